#pragma once
// What build this is: the project version (top-level CMakeLists.txt, `project(... VERSION)`) and
// the git revision it was built from (configure time; empty when unknown, e.g. in the image).

#include <string>
#include <string_view>

namespace sticky {

/// "0.2.0".
std::string_view projectVersion();
/// "1a2b3c4d5e6f", or empty when the build did not know it.
std::string_view gitRevision();
/// "sticky-proxy 0.2.0 (1a2b3c4d5e6f)", without the parenthesis when the revision is unknown.
std::string versionLine(std::string_view program);

}  // namespace sticky
