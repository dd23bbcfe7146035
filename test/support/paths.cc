#include "support/paths.h"

namespace sticky::test {

std::string sourceDir() {
  return STICKY_SOURCE_DIR;
}

std::string proxyBinary() {
  return STICKY_PROXY_BIN;
}

std::string testBackendBinary() {
  return STICKY_TEST_BACKEND_BIN;
}

std::string operatorBinary() {
  return STICKY_OPERATOR_BIN;
}

}  // namespace sticky::test
