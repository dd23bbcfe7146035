#include "controller/session_moves.h"

#include <doctest/doctest.h>

namespace sticky::op {
namespace {

using namespace std::chrono_literals;
using Clock = SessionMoveTracker::Clock;

EndpointConfig endpoint(const std::string& name, const std::string& ip,
                        EndpointState state = EndpointState::Active) {
  return {name, ip, 8080, state};
}

Pod runningPod(const std::string& name, const std::string& ip) {
  Pod p;
  p.metadata.ns = "shop";
  p.metadata.name = name;
  p.phase = "Running";
  p.pod_ip = ip;
  p.ready = true;
  return p;
}

// One served route "shop/chat" with these endpoints.
DesiredState desiredWith(std::vector<EndpointConfig> endpoints,
                         OnEndpointLost policy = OnEndpointLost::Reassign,
                         const std::string& uid = "u1") {
  DesiredState d;
  RouteVerdict v;
  v.key = "shop/chat";
  v.ns = "shop";
  v.name = "chat";
  v.uid = uid;
  v.generation = 1;
  v.accepted = true;
  v.served_generation = 1;
  v.endpoints = endpoints;
  d.routes.push_back(v);
  RouteConfig r;
  r.name = "shop/chat";
  r.on_endpoint_lost = policy;
  r.endpoints = std::move(endpoints);
  d.config.routes.push_back(std::move(r));
  return d;
}

ProxyObservation applied(std::map<std::string, uint64_t> by_endpoint) {
  ProxyObservation p;
  p.state = ProxyObservation::State::Applied;
  RouteSessions s;
  for (const auto& [name, n] : by_endpoint) s.total += n;
  s.by_endpoint = std::move(by_endpoint);
  p.sessions["shop/chat"] = std::move(s);
  return p;
}

TEST_CASE("whyEndpointLeft names the cause from the pod as the cache has it") {
  RouteVerdict v = desiredWith({endpoint("chat-0", "10.0.0.5")}).routes[0];
  EndpointConfig gone = endpoint("chat-1", "10.0.0.6");
  CHECK(whyEndpointLeft(gone, v, {}) == "deleted");
  Pod evicted = runningPod("chat-1", "10.0.0.6");
  evicted.phase = "Failed";
  evicted.reason = "Evicted";
  CHECK(whyEndpointLeft(gone, v, {evicted}) == "evicted");
  evicted.reason = "";
  CHECK(whyEndpointLeft(gone, v, {evicted}) == "phase Failed");
  Pod relabelled = runningPod("chat-1", "10.0.0.6");
  CHECK(whyEndpointLeft(gone, v, {relabelled}) == "no longer selected");
  // A pod of the same name in another namespace is another pod.
  relabelled.metadata.ns = "blog";
  CHECK(whyEndpointLeft(gone, v, {relabelled}) == "deleted");
  // The same pod name back with another IP.
  RouteVerdict moved = desiredWith({endpoint("chat-1", "10.0.0.9")}).routes[0];
  CHECK(whyEndpointLeft(gone, moved, {runningPod("chat-1", "10.0.0.9")}) == "pod IP changed");
}

TEST_CASE("sessionsLeftEvent: Normal SessionsMoved - Warning SessionsDropped with Reject") {
  std::vector<SessionsLeft> one{{"chat-1", 12, "deleted"}};
  CHECK(sessionsLeftEvent(one, OnEndpointLost::Reassign) ==
        EventSpec{"Normal", "SessionsMoved", "12 sessions will move off pod chat-1 (deleted)"});
  CHECK(sessionsLeftEvent({{"chat-1", 1, "evicted"}}, OnEndpointLost::Reassign).message ==
        "1 session will move off pod chat-1 (evicted)");
  std::vector<SessionsLeft> two{{"chat-1", 12, "deleted"}, {"chat-2", 3, "evicted"}};
  CHECK(sessionsLeftEvent(two, OnEndpointLost::Reassign).message ==
        "15 sessions will move off 2 pods: chat-1 (12, deleted), chat-2 (3, evicted)");
  EventSpec dropped = sessionsLeftEvent(one, OnEndpointLost::Reject);
  CHECK(dropped.type == "Warning");
  CHECK(dropped.reason == "SessionsDropped");
  CHECK(dropped.message ==
        "12 sessions on pod chat-1 (deleted) are dropped: each client gets one 503 and starts "
        "a new session (onEndpointLost: Reject)");
  // Many pods: ten named, the rest counted.
  std::vector<SessionsLeft> many;
  for (int i = 0; i < 12; ++i) many.push_back({"p" + std::to_string(i), 1, "deleted"});
  std::string message = sessionsLeftEvent(many, OnEndpointLost::Reassign).message;
  CHECK(message.find("12 sessions will move off 12 pods: p0 (1, deleted)") == 0);
  CHECK(message.find("p9 (1, deleted) and 2 more") != std::string::npos);
  CHECK(message.find("p10 ") == std::string::npos);
}

TEST_CASE("session move tracker: a pod with sessions that leaves gives one event with its count") {
  SessionMoveTracker tracker(60s);
  auto t0 = Clock::now();
  auto both = desiredWith({endpoint("chat-0", "10.0.0.5"), endpoint("chat-1", "10.0.0.6")});
  tracker.observe(both, applied({{"chat-0", 4}, {"chat-1", 7}}), {});
  CHECK(tracker.takeDue(t0).empty());  // nothing left yet

  // chat-1 is deleted: the pass's stats (read before the push) still count its sessions.
  auto one = desiredWith({endpoint("chat-0", "10.0.0.5")});
  tracker.observe(one, applied({{"chat-0", 4}, {"chat-1", 9}}), {runningPod("chat-0", "10.0.0.5")});
  auto due = tracker.takeDue(t0 + 1s);
  REQUIRE(due.size() == 1);
  CHECK(due[0].first == "shop/chat");
  CHECK(due[0].second ==
        EventSpec{"Normal", "SessionsMoved", "9 sessions will move off pod chat-1 (deleted)"});
  CHECK(tracker.takeDue(t0 + 2s).empty());  // taken: forgotten
}

TEST_CASE("session move tracker: Draining keeps sessions - no event until the pod leaves") {
  SessionMoveTracker tracker(60s);
  auto t0 = Clock::now();
  tracker.observe(desiredWith({endpoint("chat-0", "10.0.0.5"), endpoint("chat-1", "10.0.0.6")}),
                  applied({{"chat-0", 1}, {"chat-1", 5}}), {});
  auto draining = desiredWith(
      {endpoint("chat-0", "10.0.0.5"), endpoint("chat-1", "10.0.0.6", EndpointState::Draining)});
  tracker.observe(draining, applied({{"chat-0", 1}, {"chat-1", 5}}), {});
  CHECK(tracker.takeDue(t0).empty());
  // Gone while the proxy cannot be asked: the count last known is what moves.
  ProxyObservation down;
  down.state = ProxyObservation::State::Unreachable;
  tracker.observe(desiredWith({endpoint("chat-0", "10.0.0.5")}), down, {});
  auto due = tracker.takeDue(t0);
  REQUIRE(due.size() == 1);
  CHECK(due[0].second.message == "5 sessions will move off pod chat-1 (deleted)");
}

TEST_CASE("session move tracker: at most one event per route per interval - moves summed") {
  SessionMoveTracker tracker(60s);
  auto t0 = Clock::now();
  auto three = desiredWith({endpoint("a", "10.0.0.1"), endpoint("b", "10.0.0.2"),
                            endpoint("c", "10.0.0.3"), endpoint("d", "10.0.0.4")});
  tracker.observe(three, applied({{"a", 2}, {"b", 3}, {"c", 0}, {"d", 1}}), {});
  tracker.observe(desiredWith({endpoint("b", "10.0.0.2"), endpoint("c", "10.0.0.3"),
                               endpoint("d", "10.0.0.4")}),
                  applied({{"a", 2}, {"b", 3}, {"c", 0}, {"d", 1}}), {});
  REQUIRE(tracker.takeDue(t0).size() == 1);  // a: the first one goes at once

  // b leaves, then c (no sessions: not worth telling), then d, all within the interval.
  tracker.observe(desiredWith({endpoint("c", "10.0.0.3"), endpoint("d", "10.0.0.4")}),
                  applied({{"b", 3}, {"c", 0}, {"d", 1}}), {});
  CHECK(tracker.takeDue(t0 + 10s).empty());
  tracker.observe(desiredWith({endpoint("d", "10.0.0.4")}), applied({{"c", 0}, {"d", 1}}), {});
  // d comes back with another IP: its old sessions are lost; the new endpoint has none.
  tracker.observe(desiredWith({endpoint("d", "10.0.0.9")}), applied({{"d", 1}}),
                  {runningPod("d", "10.0.0.9")});
  CHECK(tracker.takeDue(t0 + 59s).empty());
  auto due = tracker.takeDue(t0 + 60s);
  REQUIRE(due.size() == 1);
  CHECK(due[0].second.message ==
        "4 sessions will move off 2 pods: b (3, deleted), d (1, pod IP changed)");
  // The new d had no sessions (the proxy reported the old one's under its name).
  tracker.observe(desiredWith({}), applied({{"d", 0}}), {});
  CHECK(tracker.takeDue(t0 + 200s).empty());
}

TEST_CASE("session move tracker: Reject routes get SessionsDropped - gone routes are forgotten") {
  SessionMoveTracker tracker(60s);
  auto t0 = Clock::now();
  auto with = [](const std::string& uid) {
    return desiredWith({endpoint("chat-0", "10.0.0.5")}, OnEndpointLost::Reject, uid);
  };
  tracker.observe(with("u1"), applied({{"chat-0", 3}}), {});
  tracker.observe(desiredWith({}, OnEndpointLost::Reject), applied({{"chat-0", 3}}), {});
  auto due = tracker.takeDue(t0);
  REQUIRE(due.size() == 1);
  CHECK(due[0].second.type == "Warning");
  CHECK(due[0].second.reason == "SessionsDropped");

  // The route is deleted and re-created (another uid): nothing carried over.
  tracker.observe(with("u1"), applied({{"chat-0", 3}}), {});
  tracker.observe(DesiredState{}, applied({}), {});
  tracker.observe(desiredWith({}, OnEndpointLost::Reject, "u2"), applied({{"chat-0", 3}}), {});
  CHECK(tracker.takeDue(t0 + 120s).empty());
}

}  // namespace
}  // namespace sticky::op
