#pragma once
// Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it: every replica
// reconciles and pushes to its own proxy; only the leader writes status and Events.
//
//  - The lease is read; absent -> created with us as holder.
//  - Held by someone else -> wait until its record has not changed for leaseDurationSeconds as
//    seen by OUR clock (no trust in other machines' clocks), then take it over
//    (leaseTransitions + 1, acquireTime = now).
//  - Held by us -> renew (renewTime = now).
//  - Every write is a PUT carrying the resourceVersion read, so two replicas racing for the
//    same lease cannot both win (the loser gets 409 Conflict).
//  - The leader stops considering itself leader when it has not renewed successfully for
//    renewDeadline (< leaseDuration, so it steps down before anyone may take over).
//  - On shutdown the leader releases the lease (empty holder) so another replica takes over at
//    once.
// LeaseDecider is the pure decision logic (clocks injected); LeaderElector runs it on a thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "controller/log.h"
#include "controller/status.h"

namespace sticky::op {

namespace kube {
class KubeApi;
}

using SteadyTime = std::chrono::steady_clock::time_point;

struct LeaseSettings {
  std::string ns = "default";
  std::string name = "sticky-operator";
  std::string identity;
  std::chrono::seconds lease_duration{15};
  std::chrono::seconds renew_deadline{10};
  std::chrono::milliseconds retry_period{2000};
};

/// The spec of a Lease plus its resourceVersion.
struct LeaseRecord {
  std::string holder;
  int64_t lease_duration_seconds = 0;
  std::string acquire_time;  // MicroTime text, as stored
  std::string renew_time;
  int64_t transitions = 0;
  std::string resource_version;

  static LeaseRecord fromJson(const nlohmann::json& lease);
  /// The whole Lease object for create/replace (resourceVersion included when set).
  nlohmann::json toJson(const std::string& ns, const std::string& name) const;
  /// Same holder, duration, times and transitions (resourceVersion ignored).
  bool sameSpec(const LeaseRecord& other) const;
};

class LeaseDecider {
 public:
  explicit LeaseDecider(LeaseSettings settings);

  enum class Action { Create, Update, Wait };
  struct Plan {
    Action action = Action::Wait;
    LeaseRecord record;  // what to write (Create/Update)
  };
  /// What to do, given the lease as just read (nullopt: it does not exist).
  Plan plan(const std::optional<LeaseRecord>& current, SteadyTime now, WallTime wall_now);
  /// The write of `written` succeeded (it is what the server returned).
  void written(const LeaseRecord& written, SteadyTime now);
  /// A read or write failed (conflict, transport, ...).
  void failed(SteadyTime now);
  /// What to write to give the lease up; nullopt when we do not hold it.
  std::optional<LeaseRecord> releasePlan(WallTime wall_now) const;

  bool isLeader(SteadyTime now) const;
  /// The holder as last observed ("" if none or unknown).
  const std::string& observedHolder() const { return observed_.holder; }
  const LeaseSettings& settings() const { return settings_; }

 private:
  void observe(const LeaseRecord& record, SteadyTime now);

  LeaseSettings settings_;
  LeaseRecord observed_;
  bool have_observed_ = false;
  SteadyTime observed_at_{};
  std::optional<SteadyTime> last_renew_;  // our last successful write as holder
};

class LeaderElector {
 public:
  /// `api` and `logger` must outlive the elector.
  LeaderElector(kube::KubeApi& api, LeaseSettings settings, Logger& logger);
  ~LeaderElector();  // stop()
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  void start();
  /// Stops the loop and, if leading, releases the lease. Idempotent.
  void stop();
  bool isLeader() const;
  /// Called (on the elector's thread) when leadership is gained (true) or lost (false).
  void onChange(std::function<void(bool)> fn) { on_change_ = std::move(fn); }

 private:
  void run();
  void tryAcquireOrRenew();
  std::string path() const;

  kube::KubeApi& api_;
  LeaseDecider decider_;
  Logger& logger_;
  std::function<void(bool)> on_change_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool leading_reported_ = false;
  std::thread thread_;
};

}  // namespace sticky::op
