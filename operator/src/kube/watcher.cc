#include "kube/watcher.h"

#include <algorithm>
#include <cmath>

#include "common/log.h"

namespace sticky::op::kube {
namespace {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

std::string resourceVersionOf(const nlohmann::json& object) {
  if (!object.is_object()) return "";
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return "";
  auto rv = metadata->find("resourceVersion");
  if (rv == metadata->end() || !rv->is_string()) return "";
  return rv->get<std::string>();
}

/// Field `name` of `object` if it is a string, else "". An ERROR event's Status comes from the
/// wire: json::value() throws when a field has another type, and converting a number to int is
/// undefined when it is out of range (both found by fuzz/watch_stream_fuzz.cc).
std::string stringField(const nlohmann::json& object, const char* name) {
  if (!object.is_object()) return "";
  auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

/// An ERROR event's Status says the resourceVersion is too old to resume from.
bool isExpired(const nlohmann::json& status) {
  if (!status.is_object()) return false;
  auto code = status.find("code");
  if (code != status.end() && code->is_number() && code->get<double>() == 410) return true;
  const std::string reason = stringField(status, "reason");
  return reason == "Expired" || reason == "Gone";
}

}  // namespace

std::chrono::milliseconds backoffDelay(const BackoffPolicy& policy, int failures,
                                       double unit_random) {
  const double initial = double(policy.initial.count());
  const double max = double(std::max(policy.max, policy.initial).count());
  const double nominal = std::min(max, initial * std::pow(policy.factor, std::max(failures, 0)));
  const double u = std::clamp(unit_random, 0.0, 1.0);
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  return std::chrono::milliseconds(std::llround(nominal * (1.0 - jitter * u)));
}

WatchStep nextWatchStep(const WatchState& state, const WatchInput& input,
                        const BackoffPolicy& policy, double unit_random) {
  WatchStep step{state, {}};
  WatchState& next = step.state;
  auto backoff = [&](bool relist, const std::string& why) {
    next.phase = WatchPhase::Backoff;
    next.delay = backoffDelay(policy, state.failures, unit_random);
    next.failures = state.failures + 1;
    next.relist_after_backoff = relist;
    step.actions.emplace_back(
        ReportErrorAction{why + "; retrying in " + std::to_string(next.delay.count()) + " ms"});
  };
  auto relist = [&](const std::string& why) {
    next.phase = WatchPhase::NeedList;
    next.resource_version.clear();
    next.delay = std::chrono::milliseconds(0);
    step.actions.emplace_back(ReportErrorAction{why + "; listing again"});
  };

  std::visit(Overloaded{
                 [&](const ListSucceeded& in) {
                   if (state.phase != WatchPhase::NeedList) return;
                   next.phase = WatchPhase::Watching;
                   next.resource_version = in.resource_version;
                   next.failures = 0;
                   step.actions.emplace_back(ReplaceAllAction{in.items, in.resource_version});
                 },
                 [&](const ListFailed& in) {
                   if (state.phase != WatchPhase::NeedList) return;
                   backoff(true, in.error.message);
                 },
                 [&](const EventReceived& in) {
                   if (state.phase != WatchPhase::Watching) return;
                   const WatchEvent& event = in.event;
                   switch (event.type) {
                     case WatchEventType::Added:
                     case WatchEventType::Modified:
                     case WatchEventType::Deleted: {
                       const std::string rv = resourceVersionOf(event.object);
                       if (!rv.empty()) next.resource_version = rv;
                       next.failures = 0;
                       step.actions.emplace_back(ApplyEventAction{event});
                       return;
                     }
                     case WatchEventType::Bookmark: {
                       const std::string rv = resourceVersionOf(event.object);
                       if (!rv.empty()) next.resource_version = rv;
                       next.failures = 0;
                       return;
                     }
                     case WatchEventType::Error: {
                       step.actions.emplace_back(StopStreamAction{});
                       const std::string message = stringField(event.object, "message");
                       if (isExpired(event.object)) {
                         relist("watch from resourceVersion " + state.resource_version +
                                " expired (" + message + ")");
                       } else {
                         backoff(false, "watch reported an error: " +
                                            (message.empty() ? event.object.dump() : message));
                       }
                       return;
                     }
                   }
                 },
                 [&](const WatchClosed& in) {
                   if (state.phase != WatchPhase::Watching) return;
                   // The server ended the stream (timeoutSeconds): resume from the last version
                   // seen, unless it ended at once with nothing in it.
                   if (!in.received_events && in.lasted < kVeryShortWatch) {
                     backoff(false, "the watch ended after " + std::to_string(in.lasted.count()) +
                                        " ms without any event");
                   }
                 },
                 [&](const WatchFailed& in) {
                   if (state.phase != WatchPhase::Watching) return;
                   if (in.error.gone()) {
                     relist(in.error.message);
                   } else {
                     backoff(false, in.error.message);
                   }
                 },
                 [&](const BackoffElapsed&) {
                   if (state.phase != WatchPhase::Backoff) return;
                   next.phase =
                       state.relist_after_backoff ? WatchPhase::NeedList : WatchPhase::Watching;
                   if (next.phase == WatchPhase::NeedList) next.resource_version.clear();
                   next.delay = std::chrono::milliseconds(0);
                   next.relist_after_backoff = false;
                 },
             },
             input);
  return step;
}

// ---------------------------------------------------------------------------------------------
// Watcher: the driver thread.

Watcher::Watcher(KubeApi& api, WatcherOptions options, WatchSink sink)
    : api_(api), options_(std::move(options)), sink_(std::move(sink)) {
  if (!options_.initial_resource_version.empty()) {
    state_.phase = WatchPhase::Watching;
    state_.resource_version = options_.initial_resource_version;
  }
  if (!options_.random) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    options_.random = [engine] {
      return std::uniform_real_distribution<double>(0.0, 1.0)(*engine);
    };
  }
  if (!sink_.report_error) {
    sink_.report_error = [path = options_.path](const std::string& message) {
      logWarn("sticky-operator: watch " + path + ": " + message);
    };
  }
}

Watcher::~Watcher() {
  stop();
}

void Watcher::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
}

void Watcher::stop() {
  std::shared_ptr<CancelToken> cancel;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    cancel = cancel_;
  }
  if (cancel) cancel->cancel();
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

WatchState Watcher::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

int Watcher::listCount() const {
  std::lock_guard lock(mutex_);
  return list_count_;
}

int Watcher::watchCount() const {
  std::lock_guard lock(mutex_);
  return watch_count_;
}

int Watcher::errorCount() const {
  std::lock_guard lock(mutex_);
  return error_count_;
}

void Watcher::run() {
  while (true) {
    WatchPhase phase;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      phase = state_.phase;
    }
    switch (phase) {
      case WatchPhase::NeedList:
        runList();
        break;
      case WatchPhase::Watching:
        runWatch();
        break;
      case WatchPhase::Backoff:
        runBackoff();
        break;
    }
  }
}

void Watcher::runList() {
  ListOptions list_options;
  list_options.label_selector = options_.label_selector;
  auto list = api_.list(options_.path, list_options);
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
  }
  if (!list) {
    feed(ListFailed{list.error()});
    return;
  }
  std::string rv = (*list)["metadata"].value("resourceVersion", "");
  feed(ListSucceeded{std::move((*list)["items"]), std::move(rv)});
}

void Watcher::runWatch() {
  auto cancel = std::make_shared<CancelToken>();
  WatchOptions watch_options;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    cancel_ = cancel;
    stop_stream_ = false;
    watch_options.resource_version = state_.resource_version;
    ++watch_count_;
  }
  watch_options.allow_bookmarks = true;
  watch_options.timeout_seconds = options_.watch_timeout_seconds;
  watch_options.label_selector = options_.label_selector;

  const auto started = std::chrono::steady_clock::now();
  bool received_events = false;
  auto result = api_.watch(
      options_.path, watch_options,
      [&](const WatchEvent& event) {
        received_events = true;
        feed(EventReceived{event});
        std::lock_guard lock(mutex_);
        if (stop_stream_) cancel->cancel();
      },
      *cancel);
  {
    std::lock_guard lock(mutex_);
    cancel_.reset();
    if (stopping_) return;
  }
  if (!result) {
    feed(WatchFailed{result.error()});
  } else if (*result == WatchEnd::ServerClosed) {
    feed(WatchClosed{received_events, std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - started)});
  }
  // WatchEnd::Cancelled: the machine asked to abandon the stream and has already moved on.
}

void Watcher::runBackoff() {
  std::unique_lock lock(mutex_);
  const auto until = std::chrono::steady_clock::now() + state_.delay;
  wake_.wait_until(lock, until, [this] { return stopping_; });
  if (stopping_) return;
  lock.unlock();
  feed(BackoffElapsed{});
}

void Watcher::feed(const WatchInput& input) {
  WatchState current;
  {
    std::lock_guard lock(mutex_);
    current = state_;
  }
  WatchStep step = nextWatchStep(current, input, options_.backoff, options_.random());
  bool listed = false;
  for (const auto& action : step.actions) {
    std::visit(Overloaded{
                   [&](const ReplaceAllAction& a) {
                     sink_.replace_all(a.items, a.resource_version);
                     listed = true;
                   },
                   [&](const ApplyEventAction& a) { sink_.apply(a.event); },
                   [&](const StopStreamAction&) {
                     std::lock_guard lock(mutex_);
                     stop_stream_ = true;
                   },
                   [&](const ReportErrorAction& a) {
                     {
                       std::lock_guard lock(mutex_);
                       ++error_count_;
                     }
                     sink_.report_error(a.message);
                   },
               },
               action);
  }
  std::lock_guard lock(mutex_);
  state_ = std::move(step.state);
  if (listed) ++list_count_;
}

}  // namespace sticky::op::kube
