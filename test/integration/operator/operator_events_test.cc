// The operator's API writers on their own, against a real kube-apiserver: the EventRecorder
// (create, fold repeats into count/lastTimestamp, re-create an event deleted on the server) and
// the LeaderElector (two electors racing for one Lease, release on stop, takeover). Then the
// Events the real sticky-operator records about a route: SessionsMoved when a pod with sessions
// goes, NoActiveEndpoints (a Warning) when the last one does.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "controller/events.h"
#include "controller/leader_election.h"
#include "controller/log.h"
#include "integration/operator/operator_stack.h"
#include "kube/kubeconfig.h"
#include "kube/rest_client.h"
#include "support/kube_cluster.h"
#include "support/process.h"

namespace sticky::op {
namespace {

using nlohmann::json;
using sticky::test::KubeCluster;
using sticky::test::waitFor;
using namespace std::chrono_literals;

std::string freshNamespace(KubeCluster& cluster, const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::string ns = prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  cluster.createNamespace(ns);
  return ns;
}

std::shared_ptr<kube::KubeClient> clientFor(KubeCluster& cluster) {
  auto config = kube::loadKubeconfig(cluster.kubeconfigPath());
  REQUIRE_MESSAGE(config.ok(), (config.ok() ? "" : config.error().message));
  auto client = kube::KubeClient::create(*config);
  REQUIRE_MESSAGE(client.ok(), (client.ok() ? "" : client.error().message));
  return *client;
}

// Events of one object, as the server has them.
json eventsAbout(KubeCluster& cluster, const std::string& ns, const std::string& name) {
  return json::parse(
      cluster.kubectlOrThrow({"get", "events", "-n", ns, "--field-selector",
                              "involvedObject.name=" + name, "-o", "json"}))["items"];
}

TEST_CASE("operator events: created once, repeats fold into count, re-created when gone") {
  KubeCluster& cluster = KubeCluster::shared();
  std::string ns = freshNamespace(cluster, "op-events");
  // The involved object need not exist for an Event; a ConfigMap keeps the test independent of
  // the CRD.
  cluster.kubectlOrThrow({"create", "configmap", "thing", "-n", ns});
  json cm =
      json::parse(cluster.kubectlOrThrow({"get", "configmap", "thing", "-n", ns, "-o", "json"}));
  ObjectReference about = ObjectReference::of(cm);
  REQUIRE(about.kind == "ConfigMap");
  REQUIRE_FALSE(about.uid.empty());

  auto now = *parseTime("2026-11-21T10:00:00Z");
  auto client = clientFor(cluster);
  EventRecorder recorder(*client, "sticky-operator", "op-test", [&] { return now; });
  recorder.setMinRepeatInterval(0s);
  EventSpec warning{"Warning", "InvalidSpec", "spec.ttl: must be a duration"};

  auto first = recorder.record(about, warning);
  REQUIRE_MESSAGE(first.ok(), (first.ok() ? "" : first.error().message));
  CHECK(*first);
  now += 5s;
  REQUIRE(recorder.record(about, warning).ok());
  now += 5s;
  REQUIRE(recorder.record(about, warning).ok());
  json events = eventsAbout(cluster, ns, "thing");
  REQUIRE(events.size() == 1);
  const json& e = events[0];
  CHECK(e["type"] == "Warning");
  CHECK(e["reason"] == "InvalidSpec");
  CHECK(e["message"] == "spec.ttl: must be a duration");
  CHECK(e["count"] == 3);
  CHECK(e["firstTimestamp"] == "2026-11-21T10:00:00Z");
  CHECK(e["lastTimestamp"] == "2026-11-21T10:00:10Z");
  CHECK(e["involvedObject"]["uid"] == about.uid);
  CHECK(e["source"]["component"] == "sticky-operator");

  // Another message is another event.
  REQUIRE(recorder.record(about, {"Normal", "Accepted", "2 active endpoints"}).ok());
  CHECK(eventsAbout(cluster, ns, "thing").size() == 2);

  // Repeats within the minimum interval are only counted, and written with the next one.
  recorder.setMinRepeatInterval(60s);
  now += 1s;
  auto counted = recorder.record(about, warning);
  REQUIRE(counted.ok());
  CHECK_FALSE(*counted);
  now += 60s;
  REQUIRE(recorder.record(about, warning).ok());
  bool bumped = false;
  for (const auto& ev : eventsAbout(cluster, ns, "thing")) {
    if (ev["reason"] == "InvalidSpec") bumped = ev["count"] == 5;
  }
  CHECK(bumped);

  // Deleted on the server (events expire): the next repeat creates a fresh one.
  cluster.kubectlOrThrow({"delete", "events", "--all", "-n", ns});
  REQUIRE(eventsAbout(cluster, ns, "thing").empty());
  now += 61s;
  REQUIRE(recorder.record(about, warning).ok());
  json fresh = eventsAbout(cluster, ns, "thing");
  REQUIRE(fresh.size() == 1);
  CHECK(fresh[0]["count"] == 1);
}

TEST_CASE("operator leader election: one of two electors leads - release hands over at once") {
  KubeCluster& cluster = KubeCluster::shared();
  std::string ns = freshNamespace(cluster, "op-lease");
  Logger quiet(LogLevel::Error);
  auto settings = [&](const std::string& id) {
    LeaseSettings s;
    s.ns = ns;
    s.name = "sticky-operator";
    s.identity = id;
    s.lease_duration = 4s;
    s.renew_deadline = 3s;
    s.retry_period = 200ms;
    return s;
  };
  auto client_a = clientFor(cluster);
  auto client_b = clientFor(cluster);
  auto a = std::make_unique<LeaderElector>(*client_a, settings("a"), quiet);
  auto b = std::make_unique<LeaderElector>(*client_b, settings("b"), quiet);
  a->start();
  b->start();
  REQUIRE(waitFor([&] { return a->isLeader() || b->isLeader(); }, 30s, 20ms));
  // Several renewals later there is still exactly one leader.
  for (int i = 0; i < 20; ++i) {
    CHECK_FALSE((a->isLeader() && b->isLeader()));
    std::this_thread::sleep_for(50ms);  // sampling over renewals, not waiting for a condition
  }
  LeaderElector* leader = a->isLeader() ? a.get() : b.get();
  LeaderElector* other = leader == a.get() ? b.get() : a.get();
  std::string leader_id = leader == a.get() ? "a" : "b";
  auto lease = [&] {
    return json::parse(
        cluster.kubectlOrThrow({"get", "lease", "sticky-operator", "-n", ns, "-o", "json"}));
  };
  CHECK(lease()["spec"]["holderIdentity"] == leader_id);
  CHECK(lease()["spec"]["leaseDurationSeconds"] == 4);

  // A clean stop releases the lease; the other takes it without waiting out the duration.
  leader->stop();
  CHECK_FALSE(leader->isLeader());
  CHECK(lease()["spec"]["holderIdentity"] != leader_id);  // released, not left to expire
  REQUIRE(waitFor([&] { return other->isLeader(); }, 30s, 20ms));
  json taken = lease();
  CHECK(taken["spec"]["holderIdentity"] == (leader_id == "a" ? "b" : "a"));
  CHECK(taken["spec"]["leaseTransitions"] == 1);
  other->stop();
  CHECK(lease()["spec"]["holderIdentity"] == "");
}

}  // namespace
}  // namespace sticky::op

namespace sticky::test {
namespace {

// The Events about route `name`, as the server has them, by reason, once one with `reason` is
// there; fails the test with the operator's log if it does not come.
std::map<std::string, json> waitForRouteEvent(Stack& s, const std::string& name,
                                              const std::string& reason) {
  std::map<std::string, json> out;
  bool recorded = waitFor(
      [&] {
        out.clear();
        json items = json::parse(
            s.kube().kubectlOrThrow({"get", "events", "-n", s.ns(), "--field-selector",
                                     "involvedObject.name=" + name, "-o", "json"}))["items"];
        for (const auto& e : items) out[e.value("reason", "")] = e;
        return out.count(reason) == 1;
      },
      kDeadline, 200ms);
  REQUIRE_MESSAGE(recorded, "no " << reason << " event about " << name << "; operator log tail:\n"
                                  << Stack::tail(s.op().log()));
  return out;
}

TEST_CASE("operator events: a deleted pod's sessions move - SessionsMoved with the count") {
  Stack s("op-ev-moves");
  s.addPod("chat-0");
  s.addPod("chat-1");
  s.applyRoute(routeYaml("chat", "chat"));
  s.waitForProxyEndpoints("chat", {{"chat-0", "Active"}, {"chat-1", "Active"}});
  auto pinned = pin(s, keys("k", 20));
  int on_victim = 0;
  for (const auto& [k, pod] : pinned) on_victim += pod == "chat-1" ? 1 : 0;
  REQUIRE(on_victim > 0);
  // The operator has read the sessions once the status counts them all.
  s.waitForRoute(
      "chat",
      [](const json& r) {
        return Stack::condition(r, "Ready") == "True" && r["status"].value("sessions", 0) == 20;
      },
      "the status never counted the 20 sessions");

  s.kube().deletePod(s.ns(), "chat-1", /*force=*/true);
  std::map<std::string, json> events = waitForRouteEvent(s, "chat", "SessionsMoved");
  const json moved = events["SessionsMoved"];  // a copy: `events` is read again below
  CHECK(moved["type"] == "Normal");
  CHECK(moved["message"] == std::to_string(on_victim) +
                                (on_victim == 1 ? " session" : " sessions") +
                                " will move off pod chat-1 (deleted)");
  CHECK(moved["involvedObject"]["kind"] == "StickyRoute");
  CHECK(moved["count"] == 1);
  CHECK(moved["source"]["component"] == "sticky-operator");

  // The last pod goes: clients get 503, and the event says so as a Warning (what alerts on
  // Warning events select).
  s.kube().deletePod(s.ns(), "chat-0", /*force=*/true);
  events = waitForRouteEvent(s, "chat", "NoActiveEndpoints");
  CHECK(events["NoActiveEndpoints"]["type"] == "Warning");
  json warnings = json::parse(s.kube().kubectlOrThrow(
      {"get", "events", "-n", s.ns(), "--field-selector", "type=Warning", "-o", "json"}))["items"];
  bool listed = false;
  for (const auto& e : warnings) listed = listed || e["reason"] == "NoActiveEndpoints";
  CHECK(listed);
  // chat-0's sessions moved within the minute after chat-1's: summed into the next event, not
  // written yet.
  CHECK(events["SessionsMoved"]["message"] == moved["message"]);
}

}  // namespace
}  // namespace sticky::test
