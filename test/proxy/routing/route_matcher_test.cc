#include "routing/route_matcher.h"

#include <doctest/doctest.h>

namespace sticky::proxy {
namespace {

RouteConfig route(std::string name, std::vector<std::string> hosts, std::string prefix) {
  RouteConfig r;
  r.name = std::move(name);
  r.header = std::string(1, 'k');  // not = "k": GCC 12 -Wrestrict false positive (PR105329)
  r.match.hosts = std::move(hosts);
  r.match.path_prefix = std::move(prefix);
  return r;
}

TEST_CASE("path prefixes match on segment boundaries") {
  CHECK(pathPrefixMatches("/", "/"));
  CHECK(pathPrefixMatches("/", "/anything/at/all"));
  CHECK(pathPrefixMatches("/api", "/api"));
  CHECK(pathPrefixMatches("/api", "/api/"));
  CHECK(pathPrefixMatches("/api", "/api/v1/x"));
  CHECK_FALSE(pathPrefixMatches("/api", "/apix"));
  CHECK_FALSE(pathPrefixMatches("/api", "/ap"));
  CHECK_FALSE(pathPrefixMatches("/api", "/API"));  // paths are case-sensitive
  CHECK(pathPrefixMatches("/api/", "/api/x"));
  CHECK_FALSE(pathPrefixMatches("/api/", "/api"));
}

TEST_CASE("the longest matching prefix wins, then exact host, wildcard, any host") {
  std::vector<RouteConfig> routes = {
      route("ns/any-root", {}, "/"),                            // 0
      route("ns/any-api", {}, "/api"),                          // 1
      route("ns/wild-root", {"*.example.com"}, "/"),            // 2
      route("ns/exact-root", {"chat.example.com"}, "/"),        // 3
      route("ns/wild-api", {"*.example.com"}, "/api"),          // 4
      route("ns/exact-deep", {"chat.example.com"}, "/api/v2"),  // 5
      route("ns/wild-deeper", {"*.eu.example.com"}, "/"),       // 6
  };
  RouteMatcher m(routes);
  // Longest prefix beats host specificity.
  CHECK(m.match("chat.example.com", "/api/x") == 4u);
  CHECK(m.match("chat.example.com", "/api/v2/x") == 5u);
  CHECK(m.match("other.org", "/api/x") == 1u);
  // Equal prefixes: exact > wildcard > any.
  CHECK(m.match("chat.example.com", "/") == 3u);
  CHECK(m.match("shop.example.com", "/") == 2u);
  CHECK(m.match("other.org", "/") == 0u);
  // Among wildcards, the longer suffix is more specific; wildcards match several labels.
  CHECK(m.match("a.eu.example.com", "/x") == 6u);
  CHECK(m.match("a.b.example.com", "/x") == 2u);
  // The bare suffix is not matched by its wildcard.
  CHECK(m.match("example.com", "/x") == 0u);
  // "/apix" is not under "/api".
  CHECK(m.match("other.org", "/apix") == 0u);
}

TEST_CASE("hosts match case-insensitively, without port, trailing dot or query") {
  std::vector<RouteConfig> routes = {route("ns/chat", {"chat.example.com"}, "/api")};
  RouteMatcher m(routes);
  CHECK(m.match("Chat.Example.COM", "/api") == 0u);
  CHECK(m.match("chat.example.com:8080", "/api/x") == 0u);
  CHECK(m.match("chat.example.com.", "/api") == 0u);
  CHECK(m.match("chat.example.com", "/api?x=1") == 0u);
  CHECK_FALSE(m.match("chat.example.org", "/api"));
  CHECK_FALSE(m.match("chat.example.com", "/"));
  CHECK_FALSE(m.match("", "/api"));

  std::vector<RouteConfig> any = {route("ns/any", {}, "/")};
  RouteMatcher anyhost(any);
  CHECK(anyhost.match("[::1]:8080", "/") == 0u);
  CHECK(anyhost.match("", "") == 0u);
  CHECK(anyhost.match("10.0.0.1", "/x") == 0u);
}

TEST_CASE("no routes, no match") {
  RouteMatcher m;
  CHECK_FALSE(m.match("a.b", "/"));
  RouteMatcher empty(std::vector<RouteConfig>{});
  CHECK_FALSE(empty.match("a.b", "/"));
}

}  // namespace
}  // namespace sticky::proxy
