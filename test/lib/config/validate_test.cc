#include "config/validate.h"

#include <string>

#include <doctest/doctest.h>

namespace sticky {
namespace {

std::vector<std::string> strings(const ConfigErrors& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.toString());
  return out;
}

RouteConfig validRoute() {
  RouteConfig r;
  r.name = "shop/chat";
  r.header = "client-id";
  r.endpoints = {{"chat-0", "10.0.0.5", 8080}, {"chat-1", "fd00::6", 8081}};
  return r;
}

TEST_CASE("validateEndpoint: one endpoint, paths under the given one") {
  CHECK(validateEndpoint({"chat-0", "10.0.0.5", 8080}, "spec.endpoints[0]").empty());
  CHECK(validateEndpoint({"chat_0.a-b", "fd00::5", 1, EndpointState::Draining}, "x").empty());

  auto errors = validateEndpoint({"", "chat.example.com", 0}, "spec.endpoints[2]");
  CHECK(strings(errors) ==
        std::vector<std::string>{
            "spec.endpoints[2].name: is required; set it to the endpoint's name, such as the pod "
            "name \"chat-0\"",
            "spec.endpoints[2].address: must be an IPv4 or IPv6 address such as \"10.0.0.5\" or "
            "\"fd00::5\" (not a host name), not \"chat.example.com\"",
            "spec.endpoints[2].port: must be an integer between 1 and 65535",
        });

  errors = validateEndpoint({"chat 0", "", 80}, "");
  CHECK(strings(errors) ==
        std::vector<std::string>{
            "name: must be 1-253 letters, digits, '.', '-' or '_' (it is sent in a header), such "
            "as \"chat-0\", not \"chat 0\"",
            "address: is required; set it to the endpoint's IP address, such as \"10.0.0.5\"",
        });
}

TEST_CASE("validateEndpoint agrees with validate() on the same endpoint") {
  for (EndpointConfig e : {EndpointConfig{"a", "10.0.0.1", 80},
                           EndpointConfig{"a", "256.0.0.1", 80}, EndpointConfig{"a", "::1", 0},
                           EndpointConfig{"", "", 0}, EndpointConfig{"a/b", "10.0.0.1", 80}}) {
    ProxyConfig probe;
    RouteConfig r = validRoute();
    r.endpoints = {e};
    probe.routes = {r};
    CHECK(strings(validateEndpoint(e, "routes[0].endpoints[0]")) == strings(validate(probe)));
  }
}

TEST_CASE("validateRoute: one route on its own, endpoints included") {
  CHECK(validateRoute(validRoute(), "spec").empty());

  RouteConfig r = validRoute();
  r.header = "no spaces";
  r.ttl = Duration(0);
  r.match.path_prefix = "api";
  r.match.hosts = {"chat.example.com", "Chat.example.com"};
  r.endpoints.push_back({"chat-0", "10.0.0.7", 0});
  CHECK(strings(validateRoute(r, "spec")) ==
        std::vector<std::string>{
            "spec.header: must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~), such "
            "as \"client-id\", not \"no spaces\"",
            "spec.ttl: must be a positive duration such as \"30m\", \"1h30m\", \"10s\" or "
            "\"250ms\"",
            "spec.match.pathPrefix: must be a URL path starting with '/' without spaces, '?' or "
            "'#', such as \"/\" or \"/api\", not \"api\"",
            "spec.match.hosts[1]: duplicate host \"Chat.example.com\"; list each host once",
            "spec.endpoints[2].name: duplicate endpoint name \"chat-0\" (also spec.endpoints[0]); "
            "give each endpoint of a route a unique name",
            "spec.endpoints[2].port: must be an integer between 1 and 65535",
        });
}

TEST_CASE("validateRoute leaves the checks across routes to validate()") {
  ProxyConfig config;
  config.routes = {validRoute(), validRoute()};
  for (size_t i = 0; i < config.routes.size(); ++i) {
    CHECK(validateRoute(config.routes[i], "routes[" + std::to_string(i) + "]").empty());
  }
  auto errors = validate(config);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].path == "routes[1].name");
  CHECK(errors[1].path == "routes[1].match");
}

}  // namespace
}  // namespace sticky
