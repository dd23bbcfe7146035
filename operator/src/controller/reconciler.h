#pragma once
// The level-triggered control loop. It wakes when the cache changes (bursts coalesced) and on a
// steady tick, and each time does the same thing, whatever happened:
//   1. compute the whole desired ProxyConfig and per-route verdicts from the cache (pure);
//   2. ask the proxy what it runs (GET /v1/stats: config version and live sessions); if that is
//      not the desired version (a change, or the proxy restarted with no config) push it,
//      retrying with exponential backoff while the proxy is down or refuses;
//   3. if this replica is the leader: compute each route's status, write the ones that changed
//      (counter-only changes rate-limited) with a merge patch on the status subresource, and
//      record Events for condition transitions, push failures and sessions moving off pods that
//      left a route (session_moves.h; noted on every replica, recorded by the leader).
// An exception anywhere in a pass is caught: routes get Accepted/Ready False (ReconcileError),
// a Warning Event, and the pass is retried with backoff.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "admin_api/admin_client.h"
#include "controller/desired_config.h"
#include "controller/events.h"
#include "controller/log.h"
#include "controller/session_moves.h"
#include "controller/status.h"
#include "metrics/instruments.h"

namespace sticky::op {

namespace kube {
class KubeApi;
class ObjectCache;
class CacheSnapshot;
}  // namespace kube

struct ReconcilerOptions {
  ProxySettings proxy;
  std::string admin_socket;
  std::chrono::milliseconds admin_timeout{2000};
  /// After a cache change, wait until it has been quiet this long (at most `coalesce_max`).
  std::chrono::milliseconds coalesce_quiet{20};
  std::chrono::milliseconds coalesce_max{100};
  /// How often the proxy is asked for its version and sessions (restart detection).
  std::chrono::milliseconds proxy_poll{1000};
  std::chrono::milliseconds retry_initial{200};
  std::chrono::milliseconds retry_max{5000};
  /// Status writes that only change session counters happen at most this often per route.
  std::chrono::seconds counter_status_interval{10};
  /// At most one SessionsMoved/SessionsDropped Event per route this often; moves in between are
  /// summed into the next one.
  std::chrono::seconds session_move_event_interval{60};
};

/// Extracts the routes (and the pods of their namespaces) from a cache snapshot.
ClusterSnapshot clusterSnapshotOf(const kube::CacheSnapshot& snapshot);
/// Live sessions per route and endpoint from the proxy's stats.
std::map<std::string, RouteSessions, std::less<>> sessionsOf(const admin::ProxyStats& stats);

class Reconciler {
 public:
  /// `is_leader` says whether this replica writes status and Events; `events` may be null.
  /// `api`, `events` and `logger` must outlive the reconciler.
  Reconciler(std::shared_ptr<kube::ObjectCache> cache, kube::KubeApi& api,
             std::function<bool()> is_leader, EventRecorder* events, Logger& logger,
             ReconcilerOptions options);
  ~Reconciler();  // stop()
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  void start();
  void stop();  // idempotent
  /// Asks for a pass soon (e.g. leadership was gained).
  void poke();

  /// One pass, on the caller's thread (the loop calls this; tests may too). Never throws.
  void reconcileOnce();

  /// The version of the last desired config computed (0 before the cache synced).
  uint64_t desiredVersion() const { return desired_version_.load(); }
  /// Successful pushes so far.
  uint64_t pushes() const { return pushes_.load(); }
  /// Status writes so far.
  uint64_t statusWrites() const { return status_writes_.load(); }

  /// The controller's families, named as controller-runtime names them where the concept is the
  /// same (`controller_runtime_reconcile_total{controller,result}`, `..._errors_total`,
  /// `..._time_seconds`, `..._active_workers`, `..._max_concurrent_reconciles`; the controller
  /// is "stickyroute"), and ours: `sticky_operator_config_pushes_total{result}`,
  /// `sticky_operator_status_writes_total{result}`, `sticky_operator_proxy_config_in_sync`.
  /// A pass is a success when the proxy runs the desired config at its end, an error when it
  /// threw or the proxy does not (unreachable, refused, or a push still backing off). Passes
  /// before the cache synced are not counted.
  void renderMetrics(metrics::Exposition& x) const;
  /// Why the loop looks hung, or nullopt: it has not marked progress for longer than `limit`.
  /// The loop marks progress at least every 100 ms while idle and between the calls of a pass
  /// (each bounded by a timeout), so only a call that never returns makes it stall. Nullopt
  /// while the loop is not running.
  std::optional<std::string> stalled(std::chrono::milliseconds limit) const;

 private:
  struct WriteRecord {
    std::string uid;
    nlohmann::json desired;  // the status we computed and wrote
    nlohmann::json stored;   // the status as the server stored it (PATCH response)
    std::chrono::steady_clock::time_point at;
  };
  /// A push that did not take: refused (400: the config is wrong) or not delivered.
  struct PushFailure {
    bool rejected = false;
    std::string message;
  };

  void run();
  /// True when the proxy runs the desired config at the end of the pass.
  bool pass();
  void markProgress();
  ProxyObservation observeAndPush(const DesiredState& desired);
  Result<Ok, PushFailure> push(const ProxyConfig& config);
  void writeStatuses(const kube::CacheSnapshot& snapshot, const DesiredState& desired,
                     const ProxyObservation& proxy);
  void writeErrorStatuses(const kube::CacheSnapshot& snapshot, const std::string& message);
  bool patchStatus(const nlohmann::json& object, const nlohmann::json& status,
                   const nlohmann::json& known);
  void logVerdictChanges(const DesiredState& desired);
  void recordSessionMoves(const kube::CacheSnapshot& snapshot,
                          const std::vector<std::pair<std::string, EventSpec>>& moves);
  void recordEvent(const nlohmann::json& object, const EventSpec& event);
  std::chrono::milliseconds backoff(int failures) const;

  std::shared_ptr<kube::ObjectCache> cache_;
  kube::KubeApi& api_;
  std::function<bool()> is_leader_;
  EventRecorder* events_;
  Logger& logger_;
  ReconcilerOptions options_;
  admin::AdminClient admin_;

  // State of the loop (reconciler thread only).
  LastGoodRoutes last_good_;
  SessionMoveTracker session_moves_;
  std::map<std::string, std::pair<std::string, std::string>> last_verdicts_;  // reason, message
  std::map<std::string, WriteRecord> writes_;
  int push_failures_ = 0;
  std::chrono::steady_clock::time_point next_push_{};
  std::optional<ProxyObservation> last_push_failure_;
  bool proxy_was_unreachable_ = false;
  int pass_failures_ = 0;
  std::chrono::steady_clock::time_point retry_pass_at_{};
  bool logged_unsynced_ = false;

  std::atomic<uint64_t> desired_version_{0};
  std::atomic<uint64_t> pushes_{0};
  std::atomic<uint64_t> status_writes_{0};

  // Metrics (written by the reconciler thread, read by scrapes).
  std::atomic<int64_t> last_progress_ns_{0};  // steady clock; 0: the loop is not running
  std::atomic<uint64_t> reconcile_successes_{0};
  std::atomic<uint64_t> reconcile_errors_{0};
  std::atomic<bool> reconciling_{false};
  std::atomic<uint64_t> pushes_rejected_{0};
  std::atomic<uint64_t> pushes_failed_{0};
  std::atomic<uint64_t> status_write_errors_{0};
  std::atomic<bool> in_sync_{false};
  metrics::Histogram reconcile_time_{metrics::kControllerRuntimeBuckets};

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool poked_ = false;
  std::thread thread_;
};

}  // namespace sticky::op
