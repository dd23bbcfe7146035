#pragma once
// ConfigError: one problem with a config (or any document read by JsonReader), located by the
// path of the field it is about. The config library's typed error: callers branch on the paths
// (the operator maps "routes[3]..." back to a route), so it is not a plain Error.

#include <string>
#include <vector>

namespace sticky {

/// One problem, located by a field path such as "routes[0].endpoints[2].port" ("" = the whole
/// document).
struct ConfigError {
  std::string path;
  std::string message;

  std::string toString() const;  // "routes[0].ttl: must be a duration such as 30m or 90s"
};
using ConfigErrors = std::vector<ConfigError>;

/// Every error as "path: message", joined with "; ": one line for a log, a status or an Error.
///   {{"listen", "must be ..."}, {"routes[0].ttl", "must be ..."}}
///     -> "listen: must be ...; routes[0].ttl: must be ..."
std::string describe(const ConfigErrors& errors);

}  // namespace sticky
