#pragma once
// The semantic checks of a proxy config: what the proxy would refuse, each problem with its
// field path and one sentence saying what to write instead. parseProxyConfig() runs validate();
// a config built in code (the operator's) is checked with these directly.
//
//   EndpointConfig e{"chat-0", "chat.example.com", 0};
//   validateEndpoint(e, "spec.endpoints[0]")
//     -> {"spec.endpoints[0].address", "must be an IPv4 or IPv6 address such as ..."},
//        {"spec.endpoints[0].port", "must be an integer between 1 and 65535"}

#include <string_view>

#include "config/errors.h"
#include "config/model.h"

namespace sticky {

/// Everything wrong with `config`: every route (validateRoute) and what holds across routes
/// (unique names, no two routes claiming the same host and path prefix), limits, header names,
/// listen address. Empty when the proxy would accept it.
ConfigErrors validate(const ProxyConfig& config);

/// The checks of one route on its own, with paths under `path` ("routes[3]", or "spec" for a
/// StickyRoute's spec): name, header, ttl, maxSessions, match (path prefix, hosts, no host twice)
/// and every endpoint (validateEndpoint), their names unique within the route. Not the checks
/// across routes, which only validate() can make.
ConfigErrors validateRoute(const RouteConfig& route, std::string_view path);

/// The checks of one endpoint on its own, with paths under `path` ("routes[0].endpoints[2]"):
/// name (1-253 of [A-Za-z0-9._-]), address (an IPv4 or IPv6 literal), port (1-65535). Not
/// whether its name is unique within its route.
ConfigErrors validateEndpoint(const EndpointConfig& endpoint, std::string_view path);

/// True if `name` is a valid HTTP header field name (RFC 9110 token).
bool isHeaderToken(std::string_view name);

}  // namespace sticky
