#include "controller/leader_election.h"

#include "kube/kube_api.h"

namespace sticky::op {
namespace {

using nlohmann::json;

}  // namespace

LeaseRecord LeaseRecord::fromJson(const json& lease) {
  LeaseRecord r;
  if (auto m = lease.find("metadata"); m != lease.end() && m->is_object()) {
    r.resource_version = m->value("resourceVersion", "");
  }
  auto s = lease.find("spec");
  if (s == lease.end() || !s->is_object()) return r;
  auto str = [&](const char* key) {
    auto it = s->find(key);
    return it != s->end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto num = [&](const char* key) {
    auto it = s->find(key);
    return it != s->end() && it->is_number_integer() ? it->get<int64_t>() : int64_t{0};
  };
  r.holder = str("holderIdentity");
  r.lease_duration_seconds = num("leaseDurationSeconds");
  r.acquire_time = str("acquireTime");
  r.renew_time = str("renewTime");
  r.transitions = num("leaseTransitions");
  return r;
}

json LeaseRecord::toJson(const std::string& ns, const std::string& name) const {
  json meta = {{"namespace", ns}, {"name", name}};
  if (!resource_version.empty()) meta["resourceVersion"] = resource_version;
  json spec = {{"holderIdentity", holder},
               {"leaseDurationSeconds", lease_duration_seconds},
               {"leaseTransitions", transitions}};
  if (!acquire_time.empty()) spec["acquireTime"] = acquire_time;
  if (!renew_time.empty()) spec["renewTime"] = renew_time;
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", std::move(meta)},
          {"spec", std::move(spec)}};
}

bool LeaseRecord::sameSpec(const LeaseRecord& o) const {
  return holder == o.holder && lease_duration_seconds == o.lease_duration_seconds &&
         acquire_time == o.acquire_time && renew_time == o.renew_time &&
         transitions == o.transitions;
}

LeaseDecider::LeaseDecider(LeaseSettings settings) : settings_(std::move(settings)) {}

void LeaseDecider::observe(const LeaseRecord& record, SteadyTime now) {
  if (!have_observed_ || !record.sameSpec(observed_)) {
    observed_at_ = now;
    have_observed_ = true;
  }
  observed_ = record;
}

LeaseDecider::Plan LeaseDecider::plan(const std::optional<LeaseRecord>& current, SteadyTime now,
                                      WallTime wall_now) {
  Plan p;
  std::string stamp = formatMicroTime(wall_now);
  if (!current) {
    p.action = Action::Create;
    p.record.holder = settings_.identity;
    p.record.lease_duration_seconds = settings_.lease_duration.count();
    p.record.acquire_time = stamp;
    p.record.renew_time = stamp;
    return p;
  }
  observe(*current, now);
  bool ours = current->holder == settings_.identity;
  if (!ours && !current->holder.empty()) {
    // Someone else's: theirs until the record has stood still for its duration (our clock).
    int64_t secs = current->lease_duration_seconds > 0 ? current->lease_duration_seconds
                                                       : settings_.lease_duration.count();
    if (now < observed_at_ + std::chrono::seconds(secs)) return p;  // Wait
  }
  if (!ours) last_renew_.reset();
  p.action = Action::Update;
  p.record = *current;
  p.record.holder = settings_.identity;
  p.record.lease_duration_seconds = settings_.lease_duration.count();
  p.record.renew_time = stamp;
  if (!ours) {
    p.record.acquire_time = stamp;
    p.record.transitions = current->transitions + 1;
  }
  return p;
}

void LeaseDecider::written(const LeaseRecord& written, SteadyTime now) {
  observe(written, now);
  if (written.holder == settings_.identity) {
    last_renew_ = now;
  } else {
    last_renew_.reset();
  }
}

void LeaseDecider::failed(SteadyTime) {
  // Nothing to change: leadership simply runs out renew_deadline after the last renewal.
}

std::optional<LeaseRecord> LeaseDecider::releasePlan(WallTime wall_now) const {
  if (!have_observed_ || observed_.holder != settings_.identity || !last_renew_) {
    return std::nullopt;
  }
  LeaseRecord r = observed_;
  r.holder.clear();
  r.lease_duration_seconds = 1;
  r.renew_time = formatMicroTime(wall_now);
  r.acquire_time = r.renew_time;
  return r;
}

bool LeaseDecider::isLeader(SteadyTime now) const {
  return last_renew_ && now < *last_renew_ + settings_.renew_deadline;
}

LeaderElector::LeaderElector(kube::KubeApi& api, LeaseSettings settings, Logger& logger)
    : api_(api), decider_(std::move(settings)), logger_(logger) {}

LeaderElector::~LeaderElector() {
  stop();
}

std::string LeaderElector::path() const {
  const auto& s = decider_.settings();
  return kube::kLeaseResource.objectPath(s.ns, s.name);
}

void LeaderElector::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

bool LeaderElector::isLeader() const {
  std::lock_guard lock(mutex_);
  return decider_.isLeader(std::chrono::steady_clock::now());
}

void LeaderElector::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    tryAcquireOrRenew();
    lock.lock();
    bool leader = decider_.isLeader(std::chrono::steady_clock::now());
    if (leader != leading_reported_) {
      leading_reported_ = leader;
      const auto& s = decider_.settings();
      if (leader) {
        logger_.info("became leader", {{"lease", s.ns + "/" + s.name}, {"identity", s.identity}});
      } else {
        logger_.warn("lost leadership", {{"lease", s.ns + "/" + s.name},
                                         {"identity", s.identity},
                                         {"holder", decider_.observedHolder()}});
      }
      if (on_change_) {
        lock.unlock();
        on_change_(leader);
        lock.lock();
      }
    }
    wake_.wait_for(lock, decider_.settings().retry_period, [&] { return stopping_; });
  }
}

void LeaderElector::tryAcquireOrRenew() {
  auto current = api_.get(path());
  std::optional<LeaseRecord> record;
  std::unique_lock lock(mutex_);
  if (current) {
    record = LeaseRecord::fromJson(*current);
  } else if (!current.error().notFound()) {
    decider_.failed(std::chrono::steady_clock::now());
    logger_.debug("lease read failed", {{"error", current.error().message}});
    return;
  }
  auto plan = decider_.plan(record, std::chrono::steady_clock::now(), WallClock::now());
  if (plan.action == LeaseDecider::Action::Wait) return;
  const auto& s = decider_.settings();
  lock.unlock();
  auto result =
      plan.action == LeaseDecider::Action::Create
          ? api_.create(kube::kLeaseResource.collectionPath(s.ns), plan.record.toJson(s.ns, s.name))
          : api_.replace(path(), plan.record.toJson(s.ns, s.name));
  lock.lock();
  if (result) {
    decider_.written(LeaseRecord::fromJson(*result), std::chrono::steady_clock::now());
  } else {
    decider_.failed(std::chrono::steady_clock::now());
    logger_.debug("lease write failed", {{"error", result.error().message}});
  }
}

void LeaderElector::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  std::optional<LeaseRecord> release;
  {
    std::lock_guard lock(mutex_);
    release = decider_.releasePlan(WallClock::now());
  }
  if (!release) return;
  const auto& s = decider_.settings();
  auto r = api_.replace(path(), release->toJson(s.ns, s.name));
  if (r) {
    logger_.info("released lease", {{"lease", s.ns + "/" + s.name}, {"identity", s.identity}});
    std::lock_guard lock(mutex_);
    decider_.written(LeaseRecord::fromJson(*r), std::chrono::steady_clock::now());
  } else {
    logger_.warn("could not release lease", {{"error", r.error().message}});
  }
}

}  // namespace sticky::op
