#pragma once
// list+watch of one collection as a small explicit state machine (after kube-rs's watcher):
//
//   NeedList --list ok--> Watching(rv) --event--> Watching(rv') --stream ended--> Watching(rv')
//      ^                      |  410 Gone / "too old resource version"              |
//      +----------------------+                                                    |
//   any other failure --> Backoff(delay, then NeedList or Watching(rv)) <----------+
//
// The transition function is pure (state + input -> state + actions) and unit-tested without a
// server; Watcher is the thread that runs it against a KubeApi.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube/kube_api.h"

namespace sticky::op::kube {

struct BackoffPolicy {
  std::chrono::milliseconds initial{500};
  std::chrono::milliseconds max{30000};
  double factor = 2.0;
  /// The delay is drawn uniformly from [nominal * (1 - jitter), nominal].
  double jitter = 0.3;
};

/// nominal = min(max, initial * factor^failures); failures counts from 0.
std::chrono::milliseconds backoffDelay(const BackoffPolicy& policy, int failures,
                                       double unit_random);

enum class WatchPhase { NeedList, Watching, Backoff };

struct WatchState {
  WatchPhase phase = WatchPhase::NeedList;
  /// The last resourceVersion seen (list, event or bookmark); where a watch resumes.
  std::string resource_version;
  /// Consecutive failures; the backoff exponent. Reset by a successful list or any event.
  int failures = 0;
  /// In Backoff: how long to wait, and whether to list again afterwards (else resume watching).
  std::chrono::milliseconds delay{0};
  bool relist_after_backoff = false;

  bool operator==(const WatchState&) const = default;
};

// Inputs: what happened.
struct ListSucceeded {
  nlohmann::json items;  ///< array
  std::string resource_version;
};
struct ListFailed {
  KubeError error;
};
struct EventReceived {
  WatchEvent event;
};
/// The server ended the stream normally (e.g. timeoutSeconds). A stream that ended at once
/// without a single event counts as a failure (backoff), so a server or proxy that keeps closing
/// watches immediately is not hammered in a tight loop.
struct WatchClosed {
  bool received_events = true;
  std::chrono::milliseconds lasted{std::chrono::milliseconds::max()};
};
/// A watch shorter than this that delivered nothing is a "very short watch" (see WatchClosed).
inline constexpr std::chrono::milliseconds kVeryShortWatch{1000};
struct WatchFailed {
  KubeError error;
};
struct BackoffElapsed {};
using WatchInput = std::variant<ListSucceeded, ListFailed, EventReceived, WatchClosed, WatchFailed,
                                BackoffElapsed>;

// Actions: what the driver must do besides entering the next state.
struct ReplaceAllAction {  ///< swap the whole collection (after a list)
  nlohmann::json items;
  std::string resource_version;
};
struct ApplyEventAction {  ///< ADDED/MODIFIED/DELETED
  WatchEvent event;
};
struct StopStreamAction {};  ///< abandon the current watch stream (after an ERROR event)
struct ReportErrorAction {   ///< something worth logging
  std::string message;
};
using WatchAction =
    std::variant<ReplaceAllAction, ApplyEventAction, StopStreamAction, ReportErrorAction>;

struct WatchStep {
  WatchState state;
  std::vector<WatchAction> actions;
};

/// The pure transition function. `unit_random` in [0, 1) feeds the backoff jitter. Inputs that
/// do not fit the current phase leave the state unchanged and produce no actions.
WatchStep nextWatchStep(const WatchState& state, const WatchInput& input,
                        const BackoffPolicy& policy, double unit_random);

/// Where a watcher delivers what it learns. Called on the watcher's thread, one at a time.
struct WatchSink {
  std::function<void(const nlohmann::json& items, const std::string& resource_version)> replace_all;
  std::function<void(const WatchEvent& event)> apply;  ///< ADDED/MODIFIED/DELETED only
  std::function<void(const std::string& message)>
      report_error;  ///< optional; default the shared log (warn)
};

struct WatcherOptions {
  std::string path;  ///< collection path, e.g. "/api/v1/namespaces/shop/pods"
  std::string label_selector;
  int watch_timeout_seconds = 300;
  /// Non-empty: start by watching from this resourceVersion instead of listing first (resume
  /// after a handover; tests use it to provoke 410 Gone). A 410 still leads to a full list.
  std::string initial_resource_version;
  BackoffPolicy backoff;
  /// Returns values in [0, 1); default: a seeded std::mt19937.
  std::function<double()> random;
};

/// Runs the state machine on its own thread until stop() (or destruction).
class Watcher {
 public:
  /// `api` must outlive the watcher.
  Watcher(KubeApi& api, WatcherOptions options, WatchSink sink);
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  void start();
  /// Cancels the running request or backoff and joins the thread. Idempotent.
  void stop();

  /// The state the machine is in now (for tests and diagnostics).
  WatchState state() const;
  /// Number of completed lists (initial list + relists).
  int listCount() const;
  /// Number of watch requests made (the first, and every restart after a stream ended or
  /// failed).
  int watchCount() const;
  /// Number of errors reported (failed lists and watches, ERROR events).
  int errorCount() const;

 private:
  void run();
  void runList();
  void runWatch();
  void runBackoff();
  void feed(const WatchInput& input);

  KubeApi& api_;
  WatcherOptions options_;
  WatchSink sink_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  WatchState state_;
  int list_count_ = 0;
  int watch_count_ = 0;
  int error_count_ = 0;
  bool stopping_ = false;
  bool stop_stream_ = false;
  std::shared_ptr<CancelToken> cancel_;
  std::thread thread_;
};

}  // namespace sticky::op::kube
