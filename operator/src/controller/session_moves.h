#pragma once
// Sessions that move because their pod left a route, and the Event that tells the route's
// owner, at most one per route per interval.
//
// A session is pinned to an endpoint (pod name, IP, port). While the endpoint is in the route,
// Active or Draining, its sessions stay (a pod that turns not Ready or starts terminating is
// Draining: no event). When the endpoint leaves (the pod is deleted, evicted, finished, got
// another IP, or no longer matches the selector or has the port), the proxy moves each of its
// sessions on the session's next request (onEndpointLost: Reassign), or drops it with one 503
// (Reject). The operator sees endpoints leave in the desired config, and knows how many sessions
// each had from the proxy's stats, read at the start of every pass before any push (so the proxy
// still runs the config with the leaving endpoint) and kept from earlier passes for when the
// proxy cannot be asked.
//
// Events (see docs/operations.md, "Events"):
//   Reassign -> Normal  "SessionsMoved":   "12 sessions will move off pod chat-1 (deleted)"
//   Reject   -> Warning "SessionsDropped": "12 sessions on pod chat-1 (deleted) are dropped: ..."
// Moves noted within `interval` of the route's previous such event are summed per pod and
// written together once the interval is over ("15 sessions will move off 2 pods: chat-1 (12,
// deleted), chat-2 (3, evicted)").
//
// Not thread-safe: the reconciler's thread owns it. The clock is a parameter.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/model.h"
#include "controller/desired_config.h"
#include "controller/events.h"
#include "controller/objects.h"
#include "controller/status.h"

namespace sticky::op {

namespace reason {
inline constexpr std::string_view kSessionsMoved = "SessionsMoved";
inline constexpr std::string_view kSessionsDropped = "SessionsDropped";
}  // namespace reason

/// The sessions of one pod that left a route.
struct SessionsLeft {
  std::string pod;
  uint64_t sessions = 0;
  std::string why;  // "deleted", "evicted", "phase Failed", "pod IP changed", ...

  bool operator==(const SessionsLeft&) const = default;
};

/// Why `endpoint` is not one of the route's endpoints any more, from the route's endpoints now
/// and the pods the cache holds (PURE): "deleted" (no such pod), "evicted" (phase Failed, reason
/// Evicted), "phase Failed" / "phase Succeeded", "pod IP changed", "no pod IP", "no longer
/// selected" (labels, or the named port, changed).
std::string whyEndpointLeft(const EndpointConfig& endpoint, const RouteVerdict& route,
                            const std::vector<Pod>& pods);

/// The Event for the sessions that left one route (PURE); `left` sorted by pod, non-empty.
EventSpec sessionsLeftEvent(const std::vector<SessionsLeft>& left, OnEndpointLost policy);

class SessionMoveTracker {
 public:
  using Clock = std::chrono::steady_clock;
  explicit SessionMoveTracker(std::chrono::seconds interval) : interval_(interval) {}

  /// One reconcile pass: `desired` is this pass's desired state, `proxy` what the proxy reported
  /// before this pass pushed anything, `pods` the pods of the routes' namespaces. Notes the
  /// sessions of every endpoint that was in a served route last pass and is not now; forgets
  /// routes that are gone or not served (their tables are dropped with them).
  void observe(const DesiredState& desired, const ProxyObservation& proxy,
               const std::vector<Pod>& pods);

  /// The events due now, by route key ("ns/name"): a route with noted moves whose previous
  /// event is at least `interval` old (or that had none). What is returned is forgotten.
  std::vector<std::pair<std::string, EventSpec>> takeDue(Clock::time_point now);

 private:
  struct Endpoint {
    EndpointConfig config;
    uint64_t sessions = 0;  // last known
  };
  struct RouteState {
    std::string uid;
    OnEndpointLost policy = OnEndpointLost::Reassign;
    std::vector<Endpoint> endpoints;           // as in the last pass
    std::map<std::string, SessionsLeft> left;  // by pod, since the last event
    std::optional<Clock::time_point> last_event;
  };

  std::chrono::seconds interval_;
  std::map<std::string, RouteState> routes_;
};

}  // namespace sticky::op
