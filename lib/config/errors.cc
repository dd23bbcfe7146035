#include "config/errors.h"

namespace sticky {

std::string ConfigError::toString() const {
  if (path.empty()) return message;
  return path + ": " + message;
}

std::string describe(const ConfigErrors& errors) {
  std::string out;
  for (const ConfigError& e : errors) {
    if (!out.empty()) out += "; ";
    out += e.toString();
  }
  return out;
}

}  // namespace sticky
