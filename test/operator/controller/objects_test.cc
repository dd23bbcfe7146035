// Decoding StickyRoute and Pod objects: every field the controller reads, and what anything
// missing or mistyped decodes as (decoding never fails; a bad spec is parseRouteSpec's to report).
#include "controller/objects.h"

#include <doctest/doctest.h>

namespace sticky::op {
namespace {

using nlohmann::json;

TEST_CASE("decodeStickyRoute reads metadata, spec and the Accepted condition") {
  json object = {{"metadata",
                  {{"namespace", "shop"},
                   {"name", "chat"},
                   {"uid", "u-1"},
                   {"generation", 3},
                   {"creationTimestamp", "2026-01-01T00:00:00Z"},
                   {"labels", {{"team", "a"}, {"count", 3}}}}},
                 {"spec", {{"header", "client-id"}}},
                 {"status",
                  {{"conditions", json::array({{{"type", "Ready"}, {"status", "False"}},
                                               {{"type", "Accepted"}, {"status", "True"}}})}}}};
  StickyRoute r = decodeStickyRoute(object);
  CHECK(r.metadata.key() == "shop/chat");
  CHECK(r.metadata.uid == "u-1");
  CHECK(r.metadata.generation == 3);
  CHECK(r.metadata.creation_timestamp == "2026-01-01T00:00:00Z");
  CHECK_FALSE(r.metadata.deleting);
  CHECK(r.metadata.labels == Labels{{"team", "a"}});  // a non-string label value is dropped
  CHECK(r.spec == json{{"header", "client-id"}});
  CHECK(r.accepted_in_status);

  object["status"]["conditions"][1]["status"] = "False";
  CHECK_FALSE(decodeStickyRoute(object).accepted_in_status);
}

TEST_CASE("decodeStickyRoute: missing or mistyped fields decode as absent") {
  StickyRoute r = decodeStickyRoute(
      json{{"metadata", {{"name", 7}, {"generation", "2"}, {"labels", "x"}}}, {"status", 1}});
  CHECK(r.metadata.name.empty());
  CHECK(r.metadata.generation == 0);
  CHECK(r.metadata.labels.empty());
  CHECK(r.spec.is_null());
  CHECK_FALSE(r.accepted_in_status);
  CHECK(decodeStickyRoute(json()).metadata.key() == "/");
}

TEST_CASE("decodePod reads status, readiness, deletion and every container's ports") {
  json object = {
      {"metadata",
       {{"namespace", "shop"},
        {"name", "chat-0"},
        {"deletionTimestamp", "2026-01-01T00:00:00Z"},
        {"labels", {{"app", "chat"}}}}},
      {"spec",
       {{"containers",
         json::array({{{"name", "app"},
                       {"ports", json::array({{{"name", "http"}, {"containerPort", 9000}}})}},
                      {{"name", "sidecar"}},
                      {{"name", "metrics"},
                       {"ports", json::array({{{"name", "prom"}, {"containerPort", "x"}}})}}})}}},
      {"status",
       {{"phase", "Running"},
        {"podIP", "10.0.0.5"},
        {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
  Pod p = decodePod(object);
  CHECK(p.metadata.key() == "shop/chat-0");
  CHECK(p.metadata.deleting);
  CHECK(p.metadata.labels == Labels{{"app", "chat"}});
  CHECK(p.phase == "Running");
  CHECK(p.reason.empty());
  CHECK(p.pod_ip == "10.0.0.5");
  CHECK(p.ready == std::optional<bool>(true));
  REQUIRE(p.ports.size() == 2);
  CHECK(p.ports[0].name == "http");
  CHECK(p.ports[0].number == 9000);
  CHECK(p.ports[1].name == "prom");
  CHECK(p.ports[1].number == 0);  // not a number: unusable, resolvePort skips it

  object["status"]["phase"] = "Failed";
  object["status"]["reason"] = "Evicted";
  CHECK(decodePod(object).reason == "Evicted");
  object["status"].erase("conditions");
  CHECK_FALSE(decodePod(object).ready.has_value());
  CHECK(decodePod(json::array()).ports.empty());
}

}  // namespace
}  // namespace sticky::op
