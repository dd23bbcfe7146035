#include "common/version.h"

// Set on this file only (lib/CMakeLists.txt), so a new commit recompiles nothing else.
#ifndef STICKY_VERSION
#error "STICKY_VERSION must be defined by the build"
#endif
#ifndef STICKY_GIT_REVISION
#define STICKY_GIT_REVISION ""
#endif

namespace sticky {

std::string_view projectVersion() {
  return STICKY_VERSION;
}

std::string_view gitRevision() {
  return STICKY_GIT_REVISION;
}

std::string versionLine(std::string_view program) {
  std::string line(program);
  line += ' ';
  line += projectVersion();
  if (!gitRevision().empty()) {
    line += " (";
    line += gitRevision();
    line += ')';
  }
  return line;
}

}  // namespace sticky
