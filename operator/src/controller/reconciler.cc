#include "controller/reconciler.h"

#include <algorithm>
#include <set>

#include "config/model.h"
#include "kube/cache.h"
#include "kube/kube_api.h"
#include "metrics/exposition.h"

namespace sticky::op {
namespace {

using nlohmann::json;
using Steady = std::chrono::steady_clock;

// How long a status we wrote may be missing from the cache before we stop assuming the watch
// is merely behind.
constexpr auto kEchoWait = std::chrono::seconds(3);

// The controller label of the controller-runtime families.
constexpr std::string_view kControllerName = "stickyroute";

long long millisSince(Steady::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - start).count();
}

json statusOf(const json& object) {
  auto it = object.find("status");
  return it == object.end() ? json() : *it;
}

}  // namespace

ClusterSnapshot clusterSnapshotOf(const kube::CacheSnapshot& snapshot) {
  ClusterSnapshot out;
  std::set<std::string> namespaces;
  for (const auto& [key, object] : snapshot.objects(kube::kStickyRouteResource.kind)) {
    out.routes.push_back(decodeStickyRoute(*object));
    namespaces.insert(key.namespace_);
  }
  for (const auto& ns : namespaces) {
    for (const auto& pod : snapshot.inNamespace(kube::kPodResource.kind, ns))
      out.pods.push_back(decodePod(*pod));
  }
  return out;
}

std::map<std::string, RouteSessions, std::less<>> sessionsOf(const admin::ProxyStats& stats) {
  std::map<std::string, RouteSessions, std::less<>> out;
  for (const auto& r : stats.routes) {
    RouteSessions s;
    s.total = r.sessions;
    for (const auto& e : r.endpoints) s.by_endpoint[e.name] = e.sessions;
    out[r.name] = std::move(s);
  }
  return out;
}

Reconciler::Reconciler(std::shared_ptr<kube::ObjectCache> cache, kube::KubeApi& api,
                       std::function<bool()> is_leader, EventRecorder* events, Logger& logger,
                       ReconcilerOptions options)
    : cache_(std::move(cache)),
      api_(api),
      is_leader_(std::move(is_leader)),
      events_(events),
      logger_(logger),
      options_(std::move(options)),
      admin_(options_.admin_socket, options_.admin_timeout),
      session_moves_(options_.session_move_event_interval) {}

Reconciler::~Reconciler() {
  stop();
}

void Reconciler::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  markProgress();
  thread_ = std::thread([this] { run(); });
}

void Reconciler::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  last_progress_ns_ = 0;
}

void Reconciler::markProgress() {
  last_progress_ns_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now().time_since_epoch())
          .count(),
      std::memory_order_relaxed);
}

std::optional<std::string> Reconciler::stalled(std::chrono::milliseconds limit) const {
  int64_t last = last_progress_ns_.load(std::memory_order_relaxed);
  if (last == 0) return std::nullopt;
  auto idle = Steady::now().time_since_epoch() - std::chrono::nanoseconds(last);
  if (idle <= limit) return std::nullopt;
  return "the reconcile loop has made no progress for " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(idle).count()) +
         "s (limit " + std::to_string(limit.count() / 1000) + "s)";
}

void Reconciler::renderMetrics(metrics::Exposition& x) const {
  const metrics::Label controller{"controller", kControllerName};
  x.family("controller_runtime_reconcile_total", "counter",
           "Total number of reconciliations per controller");
  const std::pair<std::string_view, uint64_t> results[] = {
      {"error", reconcile_errors_.load()},
      {"requeue", 0},
      {"requeue_after", 0},
      {"success", reconcile_successes_.load()},
  };
  for (const auto& [result, n] : results) {
    x.sample("controller_runtime_reconcile_total", {controller, {"result", result}}, n);
  }
  x.family("controller_runtime_reconcile_errors_total", "counter",
           "Total number of reconciliation errors per controller");
  x.sample("controller_runtime_reconcile_errors_total", {controller}, reconcile_errors_.load());
  x.family("controller_runtime_reconcile_time_seconds", "histogram",
           "Length of time per reconciliation per controller");
  reconcile_time_.render(x, "controller_runtime_reconcile_time_seconds", {controller});
  x.family("controller_runtime_max_concurrent_reconciles", "gauge",
           "Maximum number of concurrent reconciles per controller");
  x.sample("controller_runtime_max_concurrent_reconciles", {controller}, uint64_t{1});
  x.family("controller_runtime_active_workers", "gauge",
           "Number of currently used workers per controller");
  x.sample("controller_runtime_active_workers", {controller},
           uint64_t{reconciling_.load() ? 1u : 0u});

  x.family("sticky_operator_config_pushes_total", "counter",
           "Config pushes to the proxy: success, rejected (the proxy refused the config) or "
           "failed (not delivered: proxy unreachable or erroring).");
  x.sample("sticky_operator_config_pushes_total", {{"result", "success"}}, pushes_.load());
  x.sample("sticky_operator_config_pushes_total", {{"result", "rejected"}},
           pushes_rejected_.load());
  x.sample("sticky_operator_config_pushes_total", {{"result", "failed"}}, pushes_failed_.load());
  x.family("sticky_operator_status_writes_total", "counter",
           "StickyRoute status writes (merge patches of the status subresource) by result.");
  x.sample("sticky_operator_status_writes_total", {{"result", "success"}}, status_writes_.load());
  x.sample("sticky_operator_status_writes_total", {{"result", "error"}},
           status_write_errors_.load());
  x.family("sticky_operator_proxy_config_in_sync", "gauge",
           "1 when the proxy ran the desired config at the end of the last reconcile, else 0.");
  x.sample("sticky_operator_proxy_config_in_sync", {}, uint64_t{in_sync_.load() ? 1u : 0u});
}

void Reconciler::poke() {
  std::lock_guard lock(mutex_);
  poked_ = true;
}

std::chrono::milliseconds Reconciler::backoff(int failures) const {
  auto delay = options_.retry_initial;
  for (int i = 1; i < failures && delay < options_.retry_max; ++i) delay *= 2;
  return std::min(delay, options_.retry_max);
}

void Reconciler::run() {
  uint64_t seen = 0;
  auto next_tick = Steady::now();
  constexpr auto kSlice = std::chrono::milliseconds(100);  // how often stop() is noticed
  while (true) {
    bool poked = false;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      poked = std::exchange(poked_, false);
    }
    markProgress();
    auto now = Steady::now();
    auto due = next_tick;
    if (push_failures_ > 0) due = std::min(due, next_push_);
    if (pass_failures_ > 0) due = std::min(due, retry_pass_at_);
    uint64_t version = seen;
    if (!poked && now < due) version = cache_->waitForChange(seen, std::min(due, now + kSlice));
    bool changed = version > seen;
    if (!changed && !poked && Steady::now() < due) continue;
    if (changed) {
      // Coalesce a burst: go on once the cache has been quiet a moment, or the window is over.
      auto window_end = Steady::now() + options_.coalesce_max;
      uint64_t last = version;
      while (Steady::now() < window_end) {
        uint64_t v = cache_->waitForChange(
            last, std::min(window_end, Steady::now() + options_.coalesce_quiet));
        if (v == last) break;
        last = v;
      }
    }
    seen = cache_->version();
    reconcileOnce();
    next_tick = Steady::now() + options_.proxy_poll;
  }
}

void Reconciler::reconcileOnce() {
  std::shared_ptr<const kube::CacheSnapshot> snapshot;
  markProgress();
  const auto started = Steady::now();
  struct Active {
    std::atomic<bool>& flag;
    explicit Active(std::atomic<bool>& f) : flag(f) { flag = true; }
    ~Active() { flag = false; }
  } active(reconciling_);
  auto count = [&](bool success) {
    reconcile_time_.observe(std::chrono::duration<double>(Steady::now() - started).count());
    ++(success ? reconcile_successes_ : reconcile_errors_);
  };
  try {
    snapshot = cache_->snapshot();
    if (!snapshot->synced()) {
      if (!logged_unsynced_) logger_.info("waiting for the cache to sync before reconciling");
      logged_unsynced_ = true;
      return;
    }
    if (logged_unsynced_) {
      logger_.info(
          "cache synced",
          {{"routes", std::to_string(snapshot->objects(kube::kStickyRouteResource.kind).size())}});
      logged_unsynced_ = false;
    }
    count(pass());
    pass_failures_ = 0;
  } catch (const std::exception& e) {
    count(false);
    in_sync_ = false;
    ++pass_failures_;
    auto delay = backoff(pass_failures_);
    retry_pass_at_ = Steady::now() + delay;
    logger_.error("reconcile failed", {{"error", e.what()},
                                       {"attempt", std::to_string(pass_failures_)},
                                       {"retry_in_ms", std::to_string(delay.count())}});
    if (snapshot && snapshot->synced() && is_leader_()) {
      try {
        writeErrorStatuses(*snapshot, e.what());
      } catch (const std::exception& inner) {
        logger_.error("could not report the reconcile failure", {{"error", inner.what()}});
      }
    }
  }
}

bool Reconciler::pass() {
  auto snapshot = cache_->snapshot();
  ClusterSnapshot cluster = clusterSnapshotOf(*snapshot);
  DesiredState desired = computeDesiredState(cluster, last_good_, options_.proxy);
  last_good_ = desired.last_good;
  desired_version_ = desired.config.version;
  logVerdictChanges(desired);
  ProxyObservation proxy = observeAndPush(desired);
  markProgress();
  bool in_sync = proxy.state == ProxyObservation::State::Applied &&
                 proxy.applied_version == desired.config.version;
  in_sync_ = in_sync;
  session_moves_.observe(desired, proxy, cluster.pods);
  auto moves = session_moves_.takeDue(Steady::now());  // a follower drops them: not its to tell
  if (is_leader_()) {
    writeStatuses(*snapshot, desired, proxy);
    recordSessionMoves(*snapshot, moves);
  }
  return in_sync;
}

ProxyObservation Reconciler::observeAndPush(const DesiredState& desired) {
  ProxyObservation obs;
  auto stats = admin_.stats();
  if (stats) {
    obs.state = ProxyObservation::State::Applied;
    obs.applied_version = stats->loaded ? stats->config_version : 0;
    obs.sessions = sessionsOf(*stats);
    if (proxy_was_unreachable_) {
      logger_.info("proxy reachable", {{"socket", options_.admin_socket}});
    }
    proxy_was_unreachable_ = false;
  } else {
    obs.state = ProxyObservation::State::Unreachable;
    obs.message = stats.error().message;
    if (!proxy_was_unreachable_) {
      logger_.warn("proxy unreachable",
                   {{"socket", options_.admin_socket}, {"error", stats.error().message}});
    }
    proxy_was_unreachable_ = true;
  }
  uint64_t want = desired.config.version;
  if (stats && stats->loaded && stats->config_version == want) {
    push_failures_ = 0;
    last_push_failure_.reset();
    return obs;
  }
  auto now = Steady::now();
  if (push_failures_ > 0 && now < next_push_) {
    if (last_push_failure_ && obs.state == ProxyObservation::State::Applied) {
      obs.state = last_push_failure_->state;
      obs.message = last_push_failure_->message;
    }
    return obs;
  }
  std::string why = !stats ? "proxy unreachable"
                    : !stats->loaded
                        ? "proxy has no config"
                        : "proxy runs version " + configVersionHex(stats->config_version);
  auto pushed = push(desired.config);
  size_t endpoints = 0;
  for (const auto& r : desired.config.routes) endpoints += r.endpoints.size();
  if (pushed) {
    ++pushes_;
    push_failures_ = 0;
    last_push_failure_.reset();
    obs.state = ProxyObservation::State::Applied;
    obs.applied_version = want;
    obs.message.clear();
    logger_.info("config pushed", {{"version", configVersionHex(want)},
                                   {"routes", std::to_string(desired.config.routes.size())},
                                   {"endpoints", std::to_string(endpoints)},
                                   {"why", why},
                                   {"took_ms", std::to_string(millisSince(now))}});
    return obs;
  }
  const PushFailure& failed = pushed.error();
  ++(failed.rejected ? pushes_rejected_ : pushes_failed_);
  ++push_failures_;
  auto delay = backoff(push_failures_);
  next_push_ = Steady::now() + delay;
  obs.state =
      failed.rejected ? ProxyObservation::State::Rejected : ProxyObservation::State::Unreachable;
  obs.message = failed.message;
  ProxyObservation failure;
  failure.state = obs.state;
  failure.message = failed.message;
  last_push_failure_ = failure;
  logger_.warn(failed.rejected ? "proxy refused the config" : "config push failed",
               {{"version", configVersionHex(want)},
                {"error", failed.message},
                {"attempt", std::to_string(push_failures_)},
                {"retry_in_ms", std::to_string(delay.count())}});
  return obs;
}

Result<Ok, Reconciler::PushFailure> Reconciler::push(const ProxyConfig& config) {
  auto pushed = admin_.putConfig(config);
  if (pushed) return Ok{};
  // A 4xx (coded kRejected) means the config is wrong; anything else (no answer, another status)
  // means the proxy cannot take it now. AdminClient words a refusal "the proxy rejected the
  // config: <problems>"; the route's status carries the problems alone.
  const Error& error = pushed.error();
  if (error.code == admin::kRejected) {
    constexpr std::string_view kPrefix = "the proxy rejected the config: ";
    std::string_view message = error.message;
    if (message.rfind(kPrefix, 0) == 0) message.remove_prefix(kPrefix.size());
    return unexpected(PushFailure{true, std::string(message)});
  }
  return unexpected(PushFailure{false, error.message});
}

void Reconciler::logVerdictChanges(const DesiredState& desired) {
  std::set<std::string> present;
  for (const auto& v : desired.routes) {
    present.insert(v.key);
    std::pair<std::string, std::string> now{std::string(toString(v.reason)), v.message};
    auto it = last_verdicts_.find(v.key);
    if (it != last_verdicts_.end() && it->second == now) continue;
    last_verdicts_[v.key] = now;
    if (v.accepted) {
      logger_.info("route accepted", {{"route", v.key},
                                      {"generation", std::to_string(v.generation)},
                                      {"active", std::to_string(v.activeEndpoints())},
                                      {"draining", std::to_string(v.drainingEndpoints())}});
    } else {
      logger_.warn(
          "route not accepted",
          {{"route", v.key},
           {"generation", std::to_string(v.generation)},
           {"reason", now.first},
           {"message", v.message},
           {"served_generation", v.served() ? std::to_string(*v.served_generation) : "none"}});
    }
  }
  for (auto it = last_verdicts_.begin(); it != last_verdicts_.end();) {
    if (present.count(it->first)) {
      ++it;
      continue;
    }
    logger_.info("route removed", {{"route", it->first}});
    it = last_verdicts_.erase(it);
  }
}

void Reconciler::writeStatuses(const kube::CacheSnapshot& snapshot, const DesiredState& desired,
                               const ProxyObservation& proxy) {
  auto now = Steady::now();
  auto wall = WallClock::now();
  bool push_failed = last_push_failure_.has_value() && push_failures_ > 0;
  std::set<std::string> present;
  for (const auto& v : desired.routes) {
    present.insert(v.key);
    auto object = snapshot.find(kube::kStickyRouteResource.kind, v.ns, v.name);
    if (!object) continue;
    json current = statusOf(*object);
    json known = current;
    std::optional<Steady::time_point> last_write;
    if (auto it = writes_.find(v.key); it != writes_.end() && it->second.uid == v.uid) {
      const WriteRecord& w = it->second;
      last_write = w.at;
      // What is stored is what we wrote (possibly pruned by the CRD schema), or the watch has
      // not brought our write back yet: reason from what we wrote.
      if (w.stored == current || now - w.at < kEchoWait) known = w.desired;
    }
    json status = computeStatus(v, known, desired.config.version, proxy, wall);
    if (statusWriteNeeded(known, status, last_write, now, options_.counter_status_interval)) {
      if (patchStatus(*object, status, known)) {
        for (const auto& e : transitionEvents(known, status)) recordEvent(*object, e);
      }
    }
    if (push_failed && v.served()) {
      bool rejected = last_push_failure_->state == ProxyObservation::State::Rejected;
      recordEvent(*object, {"Warning", rejected ? "ProxyRejectedConfig" : "ProxyPushFailed",
                            std::string(rejected ? "the proxy refused the config: "
                                                 : "the config could not be pushed: ") +
                                last_push_failure_->message});
    }
  }
  std::erase_if(writes_, [&](const auto& kv) { return present.count(kv.first) == 0; });
}

void Reconciler::recordSessionMoves(const kube::CacheSnapshot& snapshot,
                                    const std::vector<std::pair<std::string, EventSpec>>& moves) {
  for (const auto& [key, event] : moves) {
    auto slash = key.find('/');
    auto object =
        snapshot.find(kube::kStickyRouteResource.kind, key.substr(0, slash), key.substr(slash + 1));
    if (object) recordEvent(*object, event);
  }
}

void Reconciler::writeErrorStatuses(const kube::CacheSnapshot& snapshot,
                                    const std::string& message) {
  for (const auto& [key, object] : snapshot.objects(kube::kStickyRouteResource.kind)) {
    json current = statusOf(*object);
    int64_t generation = object->at("metadata").value("generation", int64_t{0});
    json status = errorStatus(current, generation, message, WallClock::now());
    if (status != current && patchStatus(*object, status, current)) {
      recordEvent(*object, {"Warning", std::string(reason::kReconcileError),
                            "reconcile failed: " + message});
    }
  }
}

bool Reconciler::patchStatus(const json& object, const json& status, const json& known) {
  const json& meta = object.at("metadata");
  std::string ns = meta.value("namespace", "");
  std::string name = meta.value("name", "");
  std::string path = kube::kStickyRouteResource.objectPath(ns, name);
  auto r = api_.patch(path, json{{"status", status}}, kube::PatchType::Merge, "status");
  markProgress();
  if (!r) {
    if (!r.error().notFound()) {
      ++status_write_errors_;
      logger_.warn("status write failed",
                   {{"route", ns + "/" + name}, {"error", r.error().message}});
    }
    return false;
  }
  ++status_writes_;
  writes_[ns + "/" + name] =
      WriteRecord{meta.value("uid", ""), status, statusOf(*r), Steady::now()};
  const json* ready = findCondition(status, "Ready");
  logger_.debug(
      "status written",
      {{"route", ns + "/" + name},
       {"ready", ready ? ready->value("status", "") : std::string()},
       {"endpoints", std::to_string(status.value("readyEndpoints", 0))},
       {"sessions", std::to_string(status.value("sessions", uint64_t{0}))},
       {"counters_only", withoutCounters(known) == withoutCounters(status) ? "true" : "false"}});
  return true;
}

void Reconciler::recordEvent(const json& object, const EventSpec& event) {
  if (!events_) return;
  auto about = ObjectReference::of(object);
  auto r = events_->record(about, event);
  markProgress();
  if (!r) {
    logger_.warn("event not recorded", {{"route", about.ns + "/" + about.name},
                                        {"reason", event.reason},
                                        {"error", r.error().message}});
    return;
  }
  if (!*r) return;  // a repeat, counted locally
  logger_.info("event", {{"route", about.ns + "/" + about.name},
                         {"type", event.type},
                         {"reason", event.reason},
                         {"message", event.message}});
}

}  // namespace sticky::op
