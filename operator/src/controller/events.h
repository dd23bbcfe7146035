#pragma once
// core/v1 Events about StickyRoutes. The type says whether clients are affected: Warning when
// they get errors (a spec refused, so its changes are not served; no active endpoint, so new
// sessions get 503; the proxy cannot take the config; sessions dropped with a 503), Normal when
// the route works as meant (Accepted, Ready, sessions moving off a pod that left). Every reason
// with its type is listed in docs/operations.md ("Events"); SessionsMoved/SessionsDropped come
// from session_moves.h. Repeats of the same event are folded into one object whose count and
// lastTimestamp go up, as kubectl describe shows them.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "controller/status.h"

namespace sticky::op {

namespace kube {
class KubeApi;
}

struct EventSpec {
  std::string type;  // "Normal" or "Warning"
  std::string reason;
  std::string message;

  bool operator==(const EventSpec&) const = default;
};

struct ObjectReference {
  std::string api_version;
  std::string kind;
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;

  /// From an object's apiVersion, kind and metadata.
  static ObjectReference of(const nlohmann::json& object);
};

/// The events a status change from `previous` to `next` deserves (PURE):
///  - Accepted becomes True: Normal "Accepted";
///  - Accepted becomes False, or stays False with another reason or message: Warning with the
///    condition's reason (InvalidSelector, PortNotFound, ...);
///  - Ready becomes True: Normal "Ready";
///  - Ready leaves True for False: Warning with the Ready reason (NoActiveEndpoints: new
///    sessions, and sessions of lost pods, get 503), unless the spec was refused (already a
///    Warning) or the proxy is the cause (reported by the reconciler as push failures).
std::vector<EventSpec> transitionEvents(const nlohmann::json& previous_status,
                                        const nlohmann::json& next_status);

/// The Event object (PURE).
nlohmann::json makeEvent(const ObjectReference& about, const EventSpec& event,
                         const std::string& name, int64_t count, WallTime first, WallTime last,
                         const std::string& component, const std::string& instance);

class EventRecorder {
 public:
  using Clock = std::function<WallTime()>;
  /// `api` must outlive the recorder.
  EventRecorder(
      kube::KubeApi& api, std::string component, std::string instance,
      Clock clock = [] { return WallClock::now(); });

  /// Creates the event, or bumps count/lastTimestamp of the same one (same object, type,
  /// reason, message) recorded before. A repeat within `min_repeat_interval` of the previous
  /// write is only counted locally and written with the next one. Returns whether the API was
  /// written (false: counted locally), or the API error text.
  Result<bool> record(const ObjectReference& about, const EventSpec& event);

  void setMinRepeatInterval(std::chrono::seconds interval) { min_repeat_interval_ = interval; }

 private:
  struct Seen {
    std::string name;
    int64_t count = 0;      // as last written
    int64_t unwritten = 0;  // repeats not written yet
    WallTime first;
    WallTime last_write;
  };
  using Key = std::tuple<std::string, std::string, std::string, std::string>;

  kube::KubeApi& api_;
  std::string component_;
  std::string instance_;
  Clock clock_;
  std::chrono::seconds min_repeat_interval_{10};
  std::mutex mutex_;
  std::map<Key, Seen> seen_;
};

}  // namespace sticky::op
