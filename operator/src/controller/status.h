#pragma once
// PURE status computation for a StickyRoute: conditions (metav1.Condition shape) and counters,
// from the route's verdict, what the proxy reports, and the status already stored. Plus the
// decision whether a status write is worth making. The clock is a parameter.
//
// Conditions:
//  - Accepted: True when the current spec is served; False with the verdict's reason.
//  - Ready: True when the route is accepted, the proxy reports it runs the config that contains
//    this generation, and at least one endpoint is Active. Unknown while that cannot be known
//    yet (the proxy was not asked yet, or a new config is on its way); False otherwise.
//  Both are present from the first status write; lastTransitionTime moves only when the status
//  (True/False/Unknown) changes; each carries the generation it was computed from.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "controller/desired_config.h"

namespace sticky::op {

using WallClock = std::chrono::system_clock;
using WallTime = WallClock::time_point;

/// RFC 3339 in UTC with seconds precision ("2026-11-21T19:53:00Z"), as metav1.Time.
std::string formatTime(WallTime t);
/// RFC 3339 in UTC with microseconds ("2026-11-21T19:53:00.123456Z"), as metav1.MicroTime.
std::string formatMicroTime(WallTime t);
/// Parses RFC 3339 ("Z" or a numeric offset, optional fraction); nullopt if malformed.
std::optional<WallTime> parseTime(std::string_view text);

struct RouteSessions {
  uint64_t total = 0;
  std::map<std::string, uint64_t> by_endpoint;  // endpoint (pod) name -> live sessions
};

/// What the operator knows about its own proxy right now.
struct ProxyObservation {
  enum class State {
    NotObserved,  // not asked yet
    Unreachable,  // admin socket does not answer
    Rejected,     // it refused the desired config (message says why)
    Applied,      // it answers; applied_version is what it runs
  };
  State state = State::NotObserved;
  uint64_t applied_version = 0;
  std::string message;
  std::map<std::string, RouteSessions, std::less<>> sessions;  // by route key "ns/name"
};

namespace reason {
inline constexpr std::string_view kReady = "Ready";
inline constexpr std::string_view kNotAccepted = "NotAccepted";
inline constexpr std::string_view kNoActiveEndpoints = "NoActiveEndpoints";
inline constexpr std::string_view kProxyPending = "ProxyPending";
inline constexpr std::string_view kConfigPending = "ConfigPending";
inline constexpr std::string_view kProxyUnavailable = "ProxyUnavailable";
inline constexpr std::string_view kProxyRejectedConfig = "ProxyRejectedConfig";
inline constexpr std::string_view kReconcileError = "ReconcileError";
}  // namespace reason

struct Condition {
  std::string type;
  std::string status;  // "True", "False", "Unknown"
  std::string reason;
  std::string message;
  int64_t observed_generation = 0;
};

/// Returns `conditions` (a JSON list) with `c` set: lastTransitionTime is kept when the status
/// did not change, and set to `now` otherwise (or when the condition is new).
nlohmann::json setCondition(const nlohmann::json& conditions, const Condition& c, WallTime now);
/// The condition of that type in a status object, or nullptr.
const nlohmann::json* findCondition(const nlohmann::json& status, std::string_view type);

/// The whole status for one route. `previous` is the stored status (null/absent on first sight).
nlohmann::json computeStatus(const RouteVerdict& verdict, const nlohmann::json& previous,
                             uint64_t desired_version, const ProxyObservation& proxy, WallTime now);

/// The status after a reconcile failed with an exception: Accepted and Ready False with reason
/// ReconcileError; counters kept from `previous`.
nlohmann::json errorStatus(const nlohmann::json& previous, int64_t generation,
                           const std::string& message, WallTime now);

/// `status` without the live counters (sessions, per-endpoint sessions).
nlohmann::json withoutCounters(const nlohmann::json& status);

/// Whether to write `desired` over `current`: always when anything but counters differs;
/// counter-only differences at most once per `counter_interval` since `last_write` (a route
/// never written by this process counts as due).
bool statusWriteNeeded(const nlohmann::json& current, const nlohmann::json& desired,
                       std::optional<std::chrono::steady_clock::time_point> last_write,
                       std::chrono::steady_clock::time_point now,
                       std::chrono::steady_clock::duration counter_interval);

}  // namespace sticky::op
