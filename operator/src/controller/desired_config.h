#pragma once
// The heart of the operator: a PURE function from what the cluster looks like (StickyRoutes and
// Pods, as the API server returns them) to the whole ProxyConfig the proxy should run, plus a
// verdict per route for its status. No I/O, no clock: the same inputs give the same output, so
// the reconciler can call it on every wake-up and push only when the result differs.
//
// Decisions (see also docs/stickyroute.md):
//  - Route name "namespace/name"; routes sorted by name, endpoints by pod name.
//  - Endpoints: pods in the route's namespace matching the selector that have a pod IP and are not
//    Succeeded/Failed. Ready=True and not terminating -> Active. Terminating (deletionTimestamp)
//    or Running but not Ready -> Draining. Anything else (Pending without readiness) is skipped.
//  - spec.port is a number (used as is) or a container port name resolved per pod from
//    spec.containers[].ports[].name; pods without that name are skipped; if pods are selected
//    but none has it, the route is PortNotFound. Zero selected pods is fine (zero endpoints).
//  - A route whose current spec is not accepted keeps being served with its LAST GOOD spec
//    (settings, selector and port), with endpoints recomputed from the current pods, so pods
//    coming and going are still followed. A route that was never accepted is left out. Last
//    good specs live in memory (the caller keeps `DesiredState::last_good`); they are tied to
//    the route's uid, so a deleted and re-created route starts afresh.
//  - Two routes conflict when they have the same pathPrefix and share a host (or both match any
//    host). The route created first keeps the match; the other is ConflictingMatch. Within the
//    same second (creationTimestamp has whole seconds) the route already served keeps it (it has
//    a last good spec here, or Accepted=True in its status), then the name decides.
//  - ProxyConfig::version is a stable 64-bit hash (FNV-1a) of the rest of the config, so equal
//    desired configs have equal versions on every replica and a push is needed exactly when the
//    version differs from what the proxy reports.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "config/proxy_config.h"
#include "controller/objects.h"
#include "controller/selector.h"

namespace sticky::op {

/// Why a route is (not) accepted; the text is the Accepted condition's reason.
enum class RouteReason { Accepted, InvalidSelector, PortNotFound, InvalidSpec, ConflictingMatch };
std::string_view toString(RouteReason r);

struct SpecError {
  RouteReason reason = RouteReason::InvalidSpec;
  std::string message;
};

/// spec.port: a number, or the name of a container port.
struct PortRef {
  uint16_t number = 0;  // non-zero: a port number
  std::string name;     // non-empty: a container port name

  bool operator==(const PortRef&) const = default;
};

/// A spec that passed every check: what the route serves, minus its endpoints.
struct RouteSpec {
  Selector selector;
  PortRef port;
  RouteConfig route;       // endpoints empty
  int64_t generation = 0;  // metadata.generation of the object this spec came from

  bool operator==(const RouteSpec&) const = default;
};

/// Parses and checks a StickyRoute's spec (CRD defaults applied here too, so an object written
/// without the CRD's defaulting still means the same thing). `name` is "namespace/name".
Result<RouteSpec, SpecError> parseRouteSpec(const nlohmann::json& spec, const std::string& name);

enum class PodPhase { Skip, Active, Draining };
/// How a pod counts as an endpoint, from its status and deletionTimestamp (ignores labels).
PodPhase podPhase(const Pod& pod);
/// The pod's port for `port`: the number itself, or the named container port; nullopt if the
/// pod has no container port with that name.
std::optional<uint16_t> resolvePort(const Pod& pod, const PortRef& port);

struct LastGoodRoute {
  std::string uid;
  RouteSpec spec;

  bool operator==(const LastGoodRoute&) const = default;
};
using LastGoodRoutes = std::map<std::string, LastGoodRoute>;  // by "namespace/name"

struct RouteVerdict {
  std::string key;  // "namespace/name"
  std::string ns;
  std::string name;
  std::string uid;
  int64_t generation = 0;
  bool accepted = false;
  RouteReason reason = RouteReason::Accepted;
  std::string message;  // one sentence; for Accepted, a summary of what is served
  /// The generation whose spec is in the config (== generation when accepted; the last good
  /// one when not accepted but still served); nullopt when the route is left out.
  std::optional<int64_t> served_generation;
  std::vector<EndpointConfig> endpoints;  // what the proxy gets for this route

  bool served() const { return served_generation.has_value(); }
  size_t activeEndpoints() const;
  size_t drainingEndpoints() const;
};

/// Settings of the proxy that do not come from StickyRoutes (operator flags).
struct ProxySettings {
  std::string listen;  // empty: the proxy's own --listen flag
  Limits limits;
  HeaderNames headers;
};

struct ClusterSnapshot {
  std::vector<StickyRoute> routes;
  std::vector<Pod> pods;  // any namespaces
};

struct DesiredState {
  ProxyConfig config;                // version set to configVersion(config)
  std::vector<RouteVerdict> routes;  // every StickyRoute in the snapshot, sorted by key
  LastGoodRoutes last_good;          // keep and pass back in on the next call

  const RouteVerdict* find(std::string_view key) const;
};

DesiredState computeDesiredState(const ClusterSnapshot& snapshot, const LastGoodRoutes& previous,
                                 const ProxySettings& settings);

/// FNV-1a 64 of the config's JSON with version zeroed; never 0.
uint64_t configVersion(const ProxyConfig& config);

}  // namespace sticky::op
