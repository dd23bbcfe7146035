#pragma once
// Which route serves a request: by host (exact, "*.suffix" wildcard, or any) and the longest
// segment-aware path prefix. Immutable once built; matching takes no lock. Private to routing/.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/proxy_config.h"

namespace sticky::proxy {

/// True if `prefix` matches `path` on segment boundaries: "/api" matches "/api" and "/api/x" but
/// not "/apix"; "/" and "/api/" match everything under them.
bool pathPrefixMatches(std::string_view prefix, std::string_view path);

class RouteMatcher {
 public:
  RouteMatcher() = default;
  /// `routes` must be validated and normalized (lower-case hosts).
  explicit RouteMatcher(const std::vector<RouteConfig>& routes);

  /// Index of the route for `host` (any case; a ":port" suffix and a trailing dot are ignored)
  /// and `path` (a query string is ignored). Longest matching path prefix wins; on equal
  /// prefixes an exact host beats a wildcard (the longer suffix first), which beats any-host.
  std::optional<size_t> match(std::string_view host, std::string_view path) const;

 private:
  struct Entry {
    std::string prefix;
    size_t route;
  };
  struct Candidate {
    size_t prefix_len = 0;
    int rank = 0;  // 3 exact host, 2 wildcard, 1 any host
    size_t suffix_len = 0;
    size_t route = 0;
    bool found = false;
  };
  static void consider(const std::vector<Entry>& entries, std::string_view path, int rank,
                       size_t suffix_len, Candidate& best);

  // Heterogeneous lookup: match() looks up string_views without allocating.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Table = std::unordered_map<std::string, std::vector<Entry>, Hash, std::equal_to<>>;

  // Entries of each list are sorted by descending prefix length.
  Table exact_;
  Table wildcard_;  // key: the suffix after "*."
  std::vector<Entry> any_;
};

}  // namespace sticky::proxy
