#include "controller/events.h"

#include <doctest/doctest.h>

#include "operator/kube/in_memory_kube_api.h"

namespace sticky::op {
namespace {

using nlohmann::json;

json statusWith(const char* accepted, const char* accepted_reason, const char* ready,
                const char* ready_reason, const char* message = "m") {
  json conditions = json::array();
  if (accepted) {
    conditions.push_back({{"type", "Accepted"},
                          {"status", accepted},
                          {"reason", accepted_reason},
                          {"message", message}});
  }
  if (ready) {
    conditions.push_back(
        {{"type", "Ready"}, {"status", ready}, {"reason", ready_reason}, {"message", message}});
  }
  return {{"conditions", conditions}};
}

TEST_CASE("first sight of an accepted - ready route: Normal Accepted and Ready") {
  auto events = transitionEvents(json(), statusWith("True", "Accepted", "True", "Ready"));
  REQUIRE(events.size() == 2);
  CHECK(events[0] == EventSpec{"Normal", "Accepted", "m"});
  CHECK(events[1] == EventSpec{"Normal", "Ready", "m"});
}

TEST_CASE("a refused spec is a Warning with the condition's reason - once per reason/message") {
  json ok = statusWith("True", "Accepted", "True", "Ready");
  json bad = statusWith("False", "InvalidSelector", "False", "NotAccepted", "bad operator");
  auto events = transitionEvents(ok, bad);
  REQUIRE(events.size() == 1);  // Ready's NotAccepted is covered by the Warning
  CHECK(events[0] == EventSpec{"Warning", "InvalidSelector", "bad operator"});
  CHECK(transitionEvents(bad, bad).empty());
  json other = statusWith("False", "PortNotFound", "False", "NotAccepted", "no port");
  auto again = transitionEvents(bad, other);
  REQUIRE(again.size() == 1);
  CHECK(again[0].reason == "PortNotFound");
}

TEST_CASE("Ready transitions: Normal when gained - Warning when lost for a route's own reasons") {
  json ready = statusWith("True", "Accepted", "True", "Ready");
  json empty = statusWith("True", "Accepted", "False", "NoActiveEndpoints", "no pod");
  auto lost = transitionEvents(ready, empty);
  REQUIRE(lost.size() == 1);
  // Clients get 503 without an active endpoint: a Warning, seen by alerts on Warning events.
  CHECK(lost[0] == EventSpec{"Warning", "NoActiveEndpoints", "no pod"});
  auto back = transitionEvents(empty, ready);
  REQUIRE(back.size() == 1);
  CHECK(back[0].reason == "Ready");
  // Proxy trouble is reported by the reconciler's push-failure Warnings, not here.
  CHECK(
      transitionEvents(ready, statusWith("True", "Accepted", "False", "ProxyUnavailable")).empty());
  // Unknown is transient (a push on its way): no event.
  CHECK(
      transitionEvents(ready, statusWith("True", "Accepted", "Unknown", "ConfigPending")).empty());
  CHECK(transitionEvents(ready, ready).empty());
}

TEST_CASE("makeEvent builds a core/v1 Event about the route") {
  ObjectReference about = ObjectReference::of(
      {{"apiVersion", "kubesticky.io/v1alpha1"},
       {"kind", "StickyRoute"},
       {"metadata",
        {{"namespace", "shop"}, {"name", "chat"}, {"uid", "u1"}, {"resourceVersion", "42"}}}});
  WallTime first = *parseTime("2026-11-21T10:00:00Z");
  WallTime last = *parseTime("2026-11-21T10:05:00Z");
  json e = makeEvent(about, {"Warning", "InvalidSpec", "spec.ttl: bad"}, "chat.abc", 3, first, last,
                     "sticky-operator", "op-0");
  CHECK(e["apiVersion"] == "v1");
  CHECK(e["kind"] == "Event");
  CHECK(e["metadata"] == json{{"name", "chat.abc"}, {"namespace", "shop"}});
  CHECK(e["involvedObject"] == json{{"apiVersion", "kubesticky.io/v1alpha1"},
                                    {"kind", "StickyRoute"},
                                    {"namespace", "shop"},
                                    {"name", "chat"},
                                    {"uid", "u1"},
                                    {"resourceVersion", "42"}});
  CHECK(e["type"] == "Warning");
  CHECK(e["reason"] == "InvalidSpec");
  CHECK(e["message"] == "spec.ttl: bad");
  CHECK(e["count"] == 3);
  CHECK(e["firstTimestamp"] == "2026-11-21T10:00:00Z");
  CHECK(e["lastTimestamp"] == "2026-11-21T10:05:00Z");
  CHECK(e["source"]["component"] == "sticky-operator");
  CHECK(e["reportingInstance"] == "op-0");
}

// ---------------------------------------------------------------------------------------------
// EventRecorder against an in-memory API: the Event objects it leaves behind.

TEST_CASE("event recorder: creates the event, then folds repeats into its count") {
  using namespace std::chrono_literals;
  kube::test::InMemoryKubeApi api;
  WallTime now = *parseTime("2026-11-21T10:00:00Z");
  EventRecorder recorder(api, "sticky-operator", "op-test", [&] { return now; });
  ObjectReference about{"kubesticky.io/v1alpha1", "StickyRoute", "shop", "chat", "u1", "7"};
  EventSpec warning{"Warning", "InvalidSpec", "spec.ttl: must be a duration"};
  auto events = [&] {
    auto listed = api.list(kube::kEventResource.collectionPath("shop"));
    REQUIRE(listed.ok());
    return (*listed)["items"];
  };

  auto first = recorder.record(about, warning);
  REQUIRE(first.ok());
  CHECK(*first);
  REQUIRE(events().size() == 1);
  json created = events()[0];
  CHECK(created["type"] == "Warning");
  CHECK(created["reason"] == "InvalidSpec");
  CHECK(created["message"] == "spec.ttl: must be a duration");
  CHECK(created["count"] == 1);
  CHECK(created["involvedObject"]["kind"] == "StickyRoute");
  CHECK(created["involvedObject"]["name"] == "chat");
  CHECK(created["involvedObject"]["uid"] == "u1");
  CHECK(created["firstTimestamp"] == "2026-11-21T10:00:00Z");
  CHECK(created["source"]["component"] == "sticky-operator");

  // A repeat within the minimum interval is counted here and written with the next one.
  now += 1s;
  auto counted = recorder.record(about, warning);
  REQUIRE(counted.ok());
  CHECK_FALSE(*counted);
  CHECK(events()[0]["count"] == 1);
  now += 10s;
  auto folded = recorder.record(about, warning);
  REQUIRE(folded.ok());
  CHECK(*folded);
  REQUIRE(events().size() == 1);
  CHECK(events()[0]["count"] == 3);
  CHECK(events()[0]["firstTimestamp"] == "2026-11-21T10:00:00Z");
  CHECK(events()[0]["lastTimestamp"] == "2026-11-21T10:00:11Z");

  // Another reason is another event.
  REQUIRE(recorder.record(about, {"Normal", "Accepted", "1 active endpoint"}).ok());
  CHECK(events().size() == 2);

  // The event expired on the server: the next repeat creates it afresh.
  const std::string name = created["metadata"]["name"];
  REQUIRE(api.remove(kube::kEventResource.objectPath("shop", name)).ok());
  now += 10s;
  auto again = recorder.record(about, warning);
  REQUIRE(again.ok());
  CHECK(*again);
  int warnings = 0;
  for (const auto& e : events()) {
    if (e["reason"] == "InvalidSpec") {
      ++warnings;
      CHECK(e["count"] == 1);
    }
  }
  CHECK(warnings == 1);

  // An API failure is reported in the server's words.
  api.failNext("create",
               kube::test::InMemoryKubeApi::error(403, "Forbidden", "events is forbidden"));
  auto refused = recorder.record(about, {"Warning", "PortNotFound", "no port"});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("forbidden") != std::string::npos);
}

}  // namespace
}  // namespace sticky::op
