#include "controller/status.h"

#include <doctest/doctest.h>

namespace sticky::op {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

WallTime at(const char* text) {
  auto t = parseTime(text);
  REQUIRE(t.has_value());
  return *t;
}

RouteVerdict acceptedVerdict(int64_t generation = 2) {
  RouteVerdict v;
  v.key = "shop/chat";
  v.ns = "shop";
  v.name = "chat";
  v.generation = generation;
  v.accepted = true;
  v.reason = RouteReason::Accepted;
  v.message = "2 active endpoints, 1 draining endpoint";
  v.served_generation = generation;
  v.endpoints = {{"chat-0", "10.0.0.5", 8080, EndpointState::Active},
                 {"chat-1", "10.0.0.6", 8080, EndpointState::Active},
                 {"chat-2", "10.0.0.7", 8080, EndpointState::Draining}};
  return v;
}

ProxyObservation applied(uint64_t version) {
  ProxyObservation p;
  p.state = ProxyObservation::State::Applied;
  p.applied_version = version;
  p.sessions["shop/chat"] = RouteSessions{7, {{"chat-0", 4}, {"chat-1", 2}, {"chat-2", 1}}};
  return p;
}

const json& condition(const json& status, const char* type) {
  const json* c = findCondition(status, type);
  REQUIRE(c != nullptr);
  return *c;
}

TEST_CASE("time formatting and parsing round-trip in UTC") {
  WallTime t = at("2026-11-21T19:53:07Z");
  CHECK(formatTime(t) == "2026-11-21T19:53:07Z");
  CHECK(formatMicroTime(t + 1234us) == "2026-11-21T19:53:07.001234Z");
  CHECK(parseTime("2026-11-21T19:53:07.001234Z") == t + 1234us);
  CHECK(parseTime("2026-11-21T21:53:07+02:00") == t);
  CHECK_FALSE(parseTime("yesterday").has_value());
  CHECK_FALSE(parseTime("2026-13-21T19:53:07Z").has_value());
  CHECK_FALSE(parseTime("2026-11-21T19:53:07").has_value());
}

TEST_CASE("an accepted - applied route with active endpoints is Ready with counters") {
  WallTime now = at("2026-11-21T10:00:00Z");
  json s = computeStatus(acceptedVerdict(), json(), 42, applied(42), now);
  CHECK(s["observedGeneration"] == 2);
  CHECK(s["readyEndpoints"] == 2);
  CHECK(s["drainingEndpoints"] == 1);
  CHECK(s["sessions"] == 7);
  REQUIRE(s["endpoints"].size() == 3);
  CHECK(s["endpoints"][0] ==
        json{{"pod", "chat-0"}, {"ip", "10.0.0.5"}, {"state", "Active"}, {"sessions", 4}});
  CHECK(s["endpoints"][2]["state"] == "Draining");
  const json& acc = condition(s, "Accepted");
  CHECK(acc["status"] == "True");
  CHECK(acc["reason"] == "Accepted");
  CHECK(acc["observedGeneration"] == 2);
  CHECK(acc["lastTransitionTime"] == "2026-11-21T10:00:00Z");
  const json& ready = condition(s, "Ready");
  CHECK(ready["status"] == "True");
  CHECK(ready["reason"] == "Ready");
  CHECK(ready["message"] == "the proxy serves this generation with 2 active endpoints");
}

TEST_CASE("Ready is Unknown before the proxy is observed and while a new version is pushed") {
  WallTime now = at("2026-11-21T10:00:00Z");
  json s = computeStatus(acceptedVerdict(), json(), 42, ProxyObservation{}, now);
  CHECK(condition(s, "Ready")["status"] == "Unknown");
  CHECK(condition(s, "Ready")["reason"] == "ProxyPending");
  CHECK(condition(s, "Accepted")["status"] == "True");
  CHECK(s["sessions"] == 0);

  json pending = computeStatus(acceptedVerdict(), json(), 43, applied(42), now);
  CHECK(condition(pending, "Ready")["status"] == "Unknown");
  CHECK(condition(pending, "Ready")["reason"] == "ConfigPending");
}

TEST_CASE("Ready is False: proxy down - config refused - no active endpoint - not accepted") {
  WallTime now = at("2026-11-21T10:00:00Z");
  ProxyObservation down;
  down.state = ProxyObservation::State::Unreachable;
  down.message = "connect: No such file or directory";
  json s = computeStatus(acceptedVerdict(), json(), 42, down, now);
  CHECK(condition(s, "Ready")["status"] == "False");
  CHECK(condition(s, "Ready")["reason"] == "ProxyUnavailable");
  CHECK(condition(s, "Ready")["message"].get<std::string>().find("No such file") !=
        std::string::npos);

  ProxyObservation rejected;
  rejected.state = ProxyObservation::State::Rejected;
  rejected.message = "routes[0].ttl: bad";
  CHECK(condition(computeStatus(acceptedVerdict(), json(), 42, rejected, now), "Ready")["reason"] ==
        "ProxyRejectedConfig");

  RouteVerdict draining = acceptedVerdict();
  draining.endpoints = {{"chat-2", "10.0.0.7", 8080, EndpointState::Draining}};
  json d = computeStatus(draining, json(), 42, applied(42), now);
  CHECK(condition(d, "Ready")["status"] == "False");
  CHECK(condition(d, "Ready")["reason"] == "NoActiveEndpoints");
  CHECK(d["readyEndpoints"] == 0);
  CHECK(d["drainingEndpoints"] == 1);

  RouteVerdict invalid = acceptedVerdict(3);
  invalid.accepted = false;
  invalid.reason = RouteReason::InvalidSelector;
  invalid.message = "spec.selector.matchExpressions[0]: unknown operator \"Has\"";
  invalid.served_generation = 2;
  json i = computeStatus(invalid, json(), 42, applied(42), now);
  CHECK(condition(i, "Accepted")["status"] == "False");
  CHECK(condition(i, "Accepted")["reason"] == "InvalidSelector");
  CHECK(condition(i, "Accepted")["message"] == invalid.message);
  CHECK(condition(i, "Accepted")["observedGeneration"] == 3);
  CHECK(condition(i, "Ready")["status"] == "False");
  CHECK(condition(i, "Ready")["reason"] == "NotAccepted");
  CHECK(condition(i, "Ready")["message"].get<std::string>().find("keeps serving generation 2") !=
        std::string::npos);
  CHECK(i["readyEndpoints"] == 2);  // still serving the last good spec
}

TEST_CASE("lastTransitionTime changes only when the condition's status changes") {
  WallTime t0 = at("2026-11-21T10:00:00Z");
  WallTime t1 = t0 + 5min;
  WallTime t2 = t0 + 10min;
  json first = computeStatus(acceptedVerdict(2), json(), 42, ProxyObservation{}, t0);
  json second = computeStatus(acceptedVerdict(3), first, 42, applied(42), t1);
  // Accepted stayed True (new generation, new message): time kept, generation updated.
  CHECK(condition(second, "Accepted")["lastTransitionTime"] == "2026-11-21T10:00:00Z");
  CHECK(condition(second, "Accepted")["observedGeneration"] == 3);
  // Ready went Unknown -> True.
  CHECK(condition(second, "Ready")["lastTransitionTime"] == "2026-11-21T10:05:00Z");
  json third = computeStatus(acceptedVerdict(3), second, 42, applied(42), t2);
  CHECK(third == second);
}

TEST_CASE("setCondition keeps other condition types in place") {
  WallTime t0 = at("2026-11-21T10:00:00Z");
  json conditions = json::array({{{"type", "Custom"}, {"status", "True"}}});
  json out = setCondition(conditions, {"Ready", "False", "X", "m", 1}, t0);
  REQUIRE(out.size() == 2);
  CHECK(out[0]["type"] == "Custom");
  CHECK(out[1]["type"] == "Ready");
  out = setCondition(out, {"Ready", "True", "Y", "n", 2}, t0 + 1s);
  REQUIRE(out.size() == 2);
  CHECK(out[1]["lastTransitionTime"] == "2026-11-21T10:00:01Z");
  CHECK(out[1]["reason"] == "Y");
}

TEST_CASE("errorStatus sets both conditions False with ReconcileError - keeps counters") {
  WallTime t0 = at("2026-11-21T10:00:00Z");
  json ok = computeStatus(acceptedVerdict(), json(), 42, applied(42), t0);
  json err = errorStatus(ok, 2, "boom", t0 + 1min);
  CHECK(condition(err, "Accepted")["status"] == "False");
  CHECK(condition(err, "Accepted")["reason"] == "ReconcileError");
  CHECK(condition(err, "Ready")["message"] == "reconcile failed: boom");
  CHECK(condition(err, "Ready")["lastTransitionTime"] == "2026-11-21T10:01:00Z");
  CHECK(err["sessions"] == 7);
}

TEST_CASE("status writes: real changes at once - counter-only changes rate-limited") {
  using Steady = std::chrono::steady_clock;
  Steady::time_point t0{};
  WallTime now = at("2026-11-21T10:00:00Z");
  json base = computeStatus(acceptedVerdict(), json(), 42, applied(42), now);

  CHECK_FALSE(statusWriteNeeded(base, base, t0, t0, 10s));
  CHECK(statusWriteNeeded(json(), base, std::nullopt, t0, 10s));  // first write

  ProxyObservation more = applied(42);
  more.sessions["shop/chat"] = RouteSessions{9, {{"chat-0", 6}, {"chat-1", 2}, {"chat-2", 1}}};
  json counters = computeStatus(acceptedVerdict(), base, 42, more, now);
  CHECK(withoutCounters(counters) == withoutCounters(base));
  CHECK_FALSE(statusWriteNeeded(base, counters, t0, t0 + 3s, 10s));
  CHECK(statusWriteNeeded(base, counters, t0, t0 + 10s, 10s));
  CHECK(statusWriteNeeded(base, counters, std::nullopt, t0 + 1s, 10s));

  RouteVerdict fewer = acceptedVerdict();
  fewer.endpoints.pop_back();
  json changed = computeStatus(fewer, base, 42, applied(42), now);
  CHECK(statusWriteNeeded(base, changed, t0, t0 + 1s, 10s));
}

TEST_CASE("condition messages are capped at a UTF-8 boundary") {
  std::string long_message(5000, 'x');
  long_message.replace(4092, 2, "\xc3\xa9");  // a two-byte character across the cut
  json out = setCondition(json::array(), {"Accepted", "False", "InvalidSpec", long_message, 1},
                          at("2026-11-21T10:00:00Z"));
  std::string m = out[0]["message"];
  CHECK(m.size() <= 4096);
  CHECK(m.substr(m.size() - 3) == "...");
  CHECK_NOTHROW(out.dump());
}

}  // namespace
}  // namespace sticky::op
