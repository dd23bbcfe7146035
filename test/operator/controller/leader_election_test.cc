#include "controller/leader_election.h"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "operator/kube/in_memory_kube_api.h"
#include "support/process.h"

namespace sticky::op {
namespace {

using namespace std::chrono_literals;
using Action = LeaseDecider::Action;

LeaseSettings settings(const std::string& identity) {
  LeaseSettings s;
  s.ns = "kube-sticky";
  s.name = "sticky-operator";
  s.identity = identity;
  s.lease_duration = 15s;
  s.renew_deadline = 10s;
  s.retry_period = 2s;
  return s;
}

// What the API server would store: the written record with a new resourceVersion.
LeaseRecord stored(LeaseRecord r, int rv) {
  r.resource_version = std::to_string(rv);
  return r;
}

struct Clocks {
  SteadyTime steady{};
  WallTime wall = *parseTime("2026-11-21T10:00:00Z");
  void advance(std::chrono::milliseconds d) {
    steady += d;
    wall += d;
  }
};

TEST_CASE("no lease: create it as holder and lead") {
  Clocks c;
  LeaseDecider d(settings("a"));
  CHECK_FALSE(d.isLeader(c.steady));
  auto plan = d.plan(std::nullopt, c.steady, c.wall);
  CHECK((plan.action == Action::Create));
  CHECK(plan.record.holder == "a");
  CHECK(plan.record.lease_duration_seconds == 15);
  CHECK(plan.record.acquire_time == "2026-11-21T10:00:00.000000Z");
  CHECK(plan.record.renew_time == plan.record.acquire_time);
  CHECK(plan.record.transitions == 0);
  d.written(stored(plan.record, 1), c.steady);
  CHECK(d.isLeader(c.steady));
}

TEST_CASE("the holder renews with the resourceVersion it read - leadership needs renewals") {
  Clocks c;
  LeaseDecider d(settings("a"));
  auto create = d.plan(std::nullopt, c.steady, c.wall);
  LeaseRecord current = stored(create.record, 1);
  d.written(current, c.steady);
  c.advance(2s);
  auto renew = d.plan(current, c.steady, c.wall);
  CHECK((renew.action == Action::Update));
  CHECK(renew.record.resource_version == "1");
  CHECK(renew.record.acquire_time == current.acquire_time);
  CHECK(renew.record.renew_time == "2026-11-21T10:00:02.000000Z");
  CHECK(renew.record.transitions == 0);
  // Renewals keep failing (conflicts, API down): leader until renew_deadline after the last.
  d.failed(c.steady);
  c.advance(7s);
  CHECK(d.isLeader(c.steady));
  c.advance(1s);  // 10 s since the last successful write
  CHECK_FALSE(d.isLeader(c.steady));
}

TEST_CASE("another holder's lease is respected until it stands still for leaseDuration") {
  Clocks c;
  LeaseDecider d(settings("b"));
  LeaseRecord theirs;
  theirs.holder = "a";
  theirs.lease_duration_seconds = 15;
  theirs.acquire_time = "2026-11-21T09:00:00.000000Z";
  theirs.renew_time = "2026-11-21T09:59:59.000000Z";
  theirs.transitions = 4;
  theirs.resource_version = "10";
  CHECK((d.plan(theirs, c.steady, c.wall).action == Action::Wait));
  CHECK(d.observedHolder() == "a");
  // The holder renews: the clock restarts (our clock, not their timestamps).
  c.advance(10s);
  theirs.renew_time = "2026-11-21T10:00:10.000000Z";
  theirs.resource_version = "11";
  CHECK((d.plan(theirs, c.steady, c.wall).action == Action::Wait));
  c.advance(14s);
  CHECK((d.plan(theirs, c.steady, c.wall).action == Action::Wait));
  // The holder died: unchanged for 15 s -> take over.
  c.advance(1s);
  auto take = d.plan(theirs, c.steady, c.wall);
  REQUIRE((take.action == Action::Update));
  CHECK(take.record.holder == "b");
  CHECK(take.record.transitions == 5);
  CHECK(take.record.resource_version == "11");
  CHECK(take.record.acquire_time == "2026-11-21T10:00:25.000000Z");
  CHECK_FALSE(d.isLeader(c.steady));  // not before the write succeeds
  d.written(stored(take.record, 12), c.steady);
  CHECK(d.isLeader(c.steady));
}

TEST_CASE("a conflicting takeover does not make us leader - the winner is respected") {
  Clocks c;
  LeaseDecider d(settings("b"));
  LeaseRecord expired;
  expired.holder = "a";
  expired.lease_duration_seconds = 15;
  expired.renew_time = "2026-11-21T09:00:00.000000Z";
  expired.resource_version = "5";
  d.plan(expired, c.steady, c.wall);
  c.advance(16s);
  auto take = d.plan(expired, c.steady, c.wall);
  REQUIRE((take.action == Action::Update));
  d.failed(c.steady);  // 409: replica c got there first
  CHECK_FALSE(d.isLeader(c.steady));
  LeaseRecord winner = expired;
  winner.holder = "c";
  winner.renew_time = "2026-11-21T10:00:16.000000Z";
  winner.transitions = 1;
  winner.resource_version = "6";
  c.advance(2s);
  CHECK((d.plan(winner, c.steady, c.wall).action == Action::Wait));
}

TEST_CASE("a released lease (empty holder) is taken at once - release needs holding it") {
  Clocks c;
  LeaseDecider a(settings("a"));
  CHECK_FALSE(a.releasePlan(c.wall).has_value());
  auto create = a.plan(std::nullopt, c.steady, c.wall);
  a.written(stored(create.record, 1), c.steady);
  auto release = a.releasePlan(c.wall);
  REQUIRE(release.has_value());
  CHECK(release->holder.empty());
  CHECK(release->lease_duration_seconds == 1);
  CHECK(release->resource_version == "1");
  a.written(stored(*release, 2), c.steady);
  CHECK_FALSE(a.isLeader(c.steady));

  LeaseDecider b(settings("b"));
  auto take = b.plan(stored(*release, 2), c.steady, c.wall);
  REQUIRE((take.action == Action::Update));
  CHECK(take.record.holder == "b");
  CHECK(take.record.transitions == 1);
}

TEST_CASE("LeaseRecord JSON round trip") {
  LeaseRecord r;
  r.holder = "a";
  r.lease_duration_seconds = 15;
  r.acquire_time = "2026-11-21T10:00:00.000000Z";
  r.renew_time = "2026-11-21T10:00:02.000000Z";
  r.transitions = 2;
  r.resource_version = "77";
  auto j = r.toJson("ns", "name");
  CHECK(j["apiVersion"] == "coordination.k8s.io/v1");
  CHECK(j["kind"] == "Lease");
  CHECK(j["metadata"]["resourceVersion"] == "77");
  CHECK(j["spec"]["holderIdentity"] == "a");
  auto back = LeaseRecord::fromJson(j);
  CHECK(back.sameSpec(r));
  CHECK(back.resource_version == "77");
}

// ---------------------------------------------------------------------------------------------
// LeaderElector against an in-memory API: what the Lease says, and who leads.

LeaseSettings fast(const std::string& identity) {
  LeaseSettings s = settings(identity);
  s.lease_duration = 2s;
  s.renew_deadline = 1s;
  s.retry_period = 50ms;
  return s;
}

TEST_CASE("leader elector: acquire, renew, lose on conflict, win back, release") {
  using sticky::test::waitFor;
  kube::test::InMemoryKubeApi api;
  Logger quiet(LogLevel::Error);
  const LeaseSettings s = fast("a");
  const std::string path = kube::kLeaseResource.objectPath(s.ns, s.name);
  auto lease = [&] {
    auto r = api.get(path);
    REQUIRE(r.ok());
    return LeaseRecord::fromJson(*r);
  };
  std::mutex changes_mutex;
  std::vector<bool> changes;
  LeaderElector elector(api, s, quiet);
  elector.onChange([&](bool leading) {
    std::lock_guard lock(changes_mutex);
    changes.push_back(leading);
  });
  elector.start();

  // Acquire: no lease yet, so it is created with us as holder.
  REQUIRE(waitFor([&] { return elector.isLeader(); }, 10s));
  LeaseRecord first = lease();
  CHECK(first.holder == "a");
  CHECK(first.lease_duration_seconds == 2);
  CHECK(first.transitions == 0);
  CHECK(api.calls("create") == 1);

  // Renew: the same holder writes renewTime again, nothing else changes.
  REQUIRE(waitFor([&] { return lease().renew_time != first.renew_time; }, 10s));
  LeaseRecord renewed = lease();
  CHECK(renewed.holder == "a");
  CHECK(renewed.acquire_time == first.acquire_time);
  CHECK(renewed.transitions == 0);
  CHECK(elector.isLeader());

  // Lose on conflict: someone writes the Lease between each read and our PUT, so every renewal
  // carries a stale resourceVersion and gets 409; past renewDeadline we stop leading.
  std::atomic<int> touches{0};
  api.beforeWrite([&](const std::string& operation, const std::string& target) {
    if (operation != "replace" || target != path) return;
    auto touched =
        api.patch(path, {{"metadata", {{"annotations", {{"touch", std::to_string(++touches)}}}}}});
    REQUIRE(touched.ok());
  });
  auto reported = [&](size_t n) {
    std::lock_guard lock(changes_mutex);
    return changes.size() == n;
  };
  REQUIRE(waitFor([&] { return !elector.isLeader(); }, 10s));
  REQUIRE(waitFor([&] { return reported(2); }, 10s));  // the elector's own loop noticed too
  CHECK(touches.load() >= 1);
  CHECK(lease().holder == "a");  // nobody took it over: our writes just did not land

  // Writes go through again: the lease is still ours, so we lead again at once.
  api.beforeWrite({});
  REQUIRE(waitFor([&] { return elector.isLeader(); }, 10s));
  REQUIRE(waitFor([&] { return reported(3); }, 10s));
  CHECK(lease().holder == "a");

  // Release on stop: an empty holder, so another replica need not wait out the duration.
  elector.stop();
  CHECK_FALSE(elector.isLeader());
  CHECK(lease().holder == "");
  std::lock_guard lock(changes_mutex);
  CHECK(changes == std::vector<bool>{true, false, true});
}

TEST_CASE("leader elector: two replicas - one leads, the other takes over on release") {
  using sticky::test::waitFor;
  kube::test::InMemoryKubeApi api;
  Logger quiet(LogLevel::Error);
  const std::string path = kube::kLeaseResource.objectPath("kube-sticky", "sticky-operator");
  auto a = std::make_unique<LeaderElector>(api, fast("a"), quiet);
  auto b = std::make_unique<LeaderElector>(api, fast("b"), quiet);
  a->start();
  b->start();
  REQUIRE(waitFor([&] { return a->isLeader() || b->isLeader(); }, 10s));
  CHECK_FALSE((a->isLeader() && b->isLeader()));
  LeaderElector* leader = a->isLeader() ? a.get() : b.get();
  LeaderElector* other = leader == a.get() ? b.get() : a.get();
  const std::string other_id = leader == a.get() ? "b" : "a";
  leader->stop();
  REQUIRE(waitFor([&] { return other->isLeader(); }, 10s));
  auto taken = api.get(path);
  REQUIRE(taken.ok());
  CHECK(LeaseRecord::fromJson(*taken).holder == other_id);
  CHECK(LeaseRecord::fromJson(*taken).transitions == 1);
  other->stop();
}

}  // namespace
}  // namespace sticky::op
