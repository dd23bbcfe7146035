#include "routing/route_matcher.h"

#include <algorithm>

namespace sticky::proxy {
namespace {

// "Host" without a port and trailing dot, lower-cased. IPv6 literals keep their brackets.
std::string normalizeHost(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close != std::string_view::npos) host = host.substr(0, close + 1);
  } else if (size_t colon = host.find(':'); colon != std::string_view::npos &&
                                            host.find(':', colon + 1) == std::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  std::string out(host);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

bool pathPrefixMatches(std::string_view prefix, std::string_view path) {
  if (!path.starts_with(prefix)) return false;
  return path.size() == prefix.size() || prefix.back() == '/' || path[prefix.size()] == '/';
}

RouteMatcher::RouteMatcher(const std::vector<RouteConfig>& routes) {
  for (size_t i = 0; i < routes.size(); ++i) {
    const RouteConfig& r = routes[i];
    Entry entry{r.match.path_prefix.empty() ? "/" : r.match.path_prefix, i};
    if (r.match.hosts.empty()) {
      any_.push_back(entry);
      continue;
    }
    for (const std::string& host : r.match.hosts) {
      if (host.starts_with("*.")) {
        wildcard_[host.substr(2)].push_back(entry);
      } else {
        exact_[host].push_back(entry);
      }
    }
  }
  auto longestFirst = [](const Entry& a, const Entry& b) {
    return a.prefix.size() > b.prefix.size();
  };
  for (auto& [_, entries] : exact_) std::stable_sort(entries.begin(), entries.end(), longestFirst);
  for (auto& [_, entries] : wildcard_)
    std::stable_sort(entries.begin(), entries.end(), longestFirst);
  std::stable_sort(any_.begin(), any_.end(), longestFirst);
}

void RouteMatcher::consider(const std::vector<Entry>& entries, std::string_view path, int rank,
                            size_t suffix_len, Candidate& best) {
  for (const Entry& e : entries) {
    if (!pathPrefixMatches(e.prefix, path)) continue;
    // The first match is this list's longest prefix.
    auto better = [&] {
      if (!best.found) return true;
      if (e.prefix.size() != best.prefix_len) return e.prefix.size() > best.prefix_len;
      if (rank != best.rank) return rank > best.rank;
      return suffix_len > best.suffix_len;
    };
    if (better()) best = Candidate{e.prefix.size(), rank, suffix_len, e.route, true};
    return;
  }
}

std::optional<size_t> RouteMatcher::match(std::string_view host, std::string_view path) const {
  if (size_t q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  if (path.empty()) path = "/";
  const std::string h = normalizeHost(host);
  Candidate best;
  if (!exact_.empty()) {
    if (auto it = exact_.find(std::string_view(h)); it != exact_.end()) {
      consider(it->second, path, 3, 0, best);
    }
  }
  if (!wildcard_.empty()) {
    // "*.example.com" matches "a.example.com" and "a.b.example.com", not "example.com".
    for (size_t dot = h.find('.'); dot != std::string::npos; dot = h.find('.', dot + 1)) {
      if (dot == 0) continue;
      auto it = wildcard_.find(std::string_view(h).substr(dot + 1));
      if (it != wildcard_.end()) consider(it->second, path, 2, h.size() - dot - 1, best);
    }
  }
  consider(any_, path, 1, 0, best);
  if (!best.found) return std::nullopt;
  return best.route;
}

}  // namespace sticky::proxy
