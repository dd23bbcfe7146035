#include "admin_api/admin_api.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

namespace sticky::admin {
namespace {

ProxyStats sampleStats() {
  ProxyStats stats;
  stats.config_version = 7;
  stats.loaded = true;
  RouteStatsView route;
  route.name = "shop/chat";
  route.sessions = 3;
  route.requests = 10;
  route.placements = 4;
  route.moves = 1;
  route.evictions = 2;
  route.expirations = 5;
  route.endpoints.push_back({"chat-0", "10.0.0.5", 8080, EndpointState::Active, false, 2, 7});
  route.endpoints.push_back({"chat-1", "fd00::1", 9090, EndpointState::Draining, true, 1, 3});
  stats.routes.push_back(route);
  RouteStatsView empty;
  empty.name = "shop/empty";
  stats.routes.push_back(empty);
  return stats;
}

TEST_CASE("stats round trip through JSON with camelCase field names") {
  ProxyStats stats = sampleStats();
  nlohmann::json j = toJson(stats);
  CHECK(j["configVersion"] == 7);
  CHECK(j["loaded"] == true);
  CHECK(j["routes"][0]["endpoints"][1]["state"] == "Draining");
  CHECK(j["routes"][0]["endpoints"][1]["down"] == true);

  auto back = statsFromJson(nlohmann::json::parse(j.dump()));
  REQUIRE(back.ok());
  CHECK(*back == stats);
  REQUIRE(back->findRoute("shop/chat") != nullptr);
  CHECK(back->findRoute("shop/chat")->endpoints.size() == 2);
  CHECK(back->findRoute("shop/none") == nullptr);
}

TEST_CASE("stats parsing names the offending field") {
  nlohmann::json j = toJson(sampleStats());
  j["routes"][0]["endpoints"][1]["port"] = 70000;
  auto r = statsFromJson(j);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message ==
        "routes[0].endpoints[1].port: must be an integer between 0 and 65535, not 70000");

  j = toJson(sampleStats());
  j["routes"][0]["endpoints"][0]["state"] = "Gone";
  r = statsFromJson(j);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message ==
        "routes[0].endpoints[0].state: must be one of Active, Draining, not \"Gone\"");

  j = toJson(sampleStats());
  j["routes"][1].erase("sessions");
  r = statsFromJson(j);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "routes[1].sessions: is required");

  j = toJson(sampleStats());
  j["configVersion"] = -1;
  r = statsFromJson(j);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message ==
        "configVersion: must be a non-negative integer, not a negative number");

  r = statsFromJson(nlohmann::json::array());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "must be an object, not a list");
}

TEST_CASE("stats parsing reports every problem at once and ignores unknown fields") {
  nlohmann::json j = toJson(sampleStats());
  j["routes"][0]["endpoints"][0]["port"] = "80";
  j["routes"][1].erase("moves");
  j["loaded"] = 1;
  j["addedByANewerProxy"] = {{"x", 1}};
  auto r = statsFromJson(j);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message ==
        "loaded: must be true or false, not an integer; routes[0].endpoints[0].port: must be an "
        "integer between 0 and 65535, not a string; routes[1].moves: is required");

  j = toJson(sampleStats());
  j["addedByANewerProxy"] = true;
  j["routes"][0]["endpoints"][0]["zone"] = "a";
  auto ok = statsFromJson(j);
  REQUIRE(ok.ok());
  CHECK(*ok == sampleStats());
}

TEST_CASE("stats carry whose sessions they count - a 0.1 proxy's answer still reads") {
  ProxyStats stats = sampleStats();
  stats.sessions_scope = SessionsScope::Cluster;
  stats.routes[0].local_sessions = 2;
  nlohmann::json j = toJson(stats);
  CHECK(j["sessionsScope"] == "cluster");
  CHECK(j["routes"][0]["localSessions"] == 2);
  auto back = statsFromJson(j);
  REQUIRE(back.ok());
  CHECK(*back == stats);

  // 0.1 sent neither field: its count is its own table's.
  j.erase("sessionsScope");
  j["routes"][0].erase("localSessions");
  back = statsFromJson(j);
  REQUIRE(back.ok());
  CHECK(std::string(toString(back->sessions_scope)) == "replica");
  CHECK(back->routes[0].local_sessions == 3);

  j["sessionsScope"] = "galaxy";
  back = statsFromJson(j);
  REQUIRE_FALSE(back.ok());
  CHECK(back.error().message == "sessionsScope: must be one of replica, cluster, not \"galaxy\"");
}

TEST_CASE("stats carry the shared table's figures when there is one") {
  ProxyStats stats = sampleStats();
  stats.shared_table = SharedTableView{.connected = true,
                                       .primary = "10.0.0.9:6379",
                                       .replica_id = "kube-sticky-0/1/5e0c2a9b",
                                       .commands = 120,
                                       .errors = 2,
                                       .timeouts = 1,
                                       .rejected = 3,
                                       .connects = 4,
                                       .connect_failures = 5,
                                       .latency_count = 117,
                                       .latency_sum_us = 23400,
                                       .refreshed = 6,
                                       .refresh_batches = 7,
                                       .refresh_batch_keys = 8,
                                       .reasserted = 9,
                                       .conflicts = 10,
                                       .moves = 11,
                                       .move_conflicts = 12,
                                       .events_sent = 13,
                                       .events_applied = 14};
  stats.routes[0].shared_table = RouteSharedView{40, 15, 2, 1};
  nlohmann::json j = toJson(stats);
  CHECK(j["sharedTable"]["primary"] == "10.0.0.9:6379");
  CHECK(j["sharedTable"]["replicaId"] == "kube-sticky-0/1/5e0c2a9b");
  CHECK(j["sharedTable"]["connectFailures"] == 5);
  CHECK(j["sharedTable"]["latencySumUs"] == 23400);
  CHECK(j["sharedTable"]["eventsApplied"] == 14);
  CHECK(j["routes"][0]["sharedTable"]["adopted"] == 15);
  CHECK(j["routes"][0]["sharedTable"]["unsyncedEntries"] == 1);
  CHECK_FALSE(j["routes"][1].contains("sharedTable"));
  auto back = statsFromJson(j);
  REQUIRE(back.ok());
  CHECK(*back == stats);

  // Absent (no shared table, or a proxy before 0.2.0): none.
  j.erase("sharedTable");
  j["routes"][0].erase("sharedTable");
  back = statsFromJson(j);
  REQUIRE(back.ok());
  CHECK_FALSE(back->shared_table.has_value());
  CHECK_FALSE(back->routes[0].shared_table.has_value());

  // Present but malformed: every problem named.
  j["sharedTable"] = {{"connected", "yes"}, {"primary", "p"}, {"replicaId", "r"}};
  j["routes"][0]["sharedTable"] = 3;
  back = statsFromJson(j);
  REQUIRE_FALSE(back.ok());
  const std::string& message = back.error().message;
  INFO(message);
  CHECK(message.find("sharedTable.connected: must be") != std::string::npos);
  CHECK(message.find("sharedTable.commands: is required") != std::string::npos);
  CHECK(message.find("routes[0].sharedTable: must be an object") != std::string::npos);
}

TEST_CASE("session dump round trip") {
  SessionDump dump;
  dump.route = "shop/chat";
  dump.total = 1000;
  dump.sessions.push_back({"42", "chat-0", 1200});
  dump.sessions.push_back({"key with \"quotes\"", "chat-1", 0});
  nlohmann::json j = toJson(dump);
  CHECK(j["sessions"][0]["idleMs"] == 1200);
  auto back = sessionDumpFromJson(nlohmann::json::parse(j.dump()));
  REQUIRE(back.ok());
  CHECK(*back == dump);

  j["sessions"][1]["idleMs"] = "soon";
  auto bad = sessionDumpFromJson(j);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == "sessions[1].idleMs: must be a non-negative integer, not a string");
}

TEST_CASE("applied and evicted documents") {
  auto applied = appliedFromJson(toJson(Applied{12}));
  REQUIRE(applied.ok());
  CHECK(applied->version == 12);
  auto refused = appliedFromJson(nlohmann::json{{"applied", false}, {"version", 1}});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message == "applied: is false: the proxy did not apply the config");

  auto evicted = evictedFromJson(toJson(Evicted{5}));
  REQUIRE(evicted.ok());
  CHECK(evicted->evicted == 5);
  CHECK_FALSE(evictedFromJson(nlohmann::json{{"evicted", "five"}}).ok());
}

TEST_CASE("error bodies: every config error is kept and readable") {
  ConfigErrors errors = {{"routes[0].ttl", "must be a duration such as 30m or 90s"},
                         {"routes[1].header", "must be a valid HTTP header name"}};
  std::string body = errorsToJson(errors).dump();
  ConfigErrors back = configErrorsFromBody(body);
  REQUIRE(back.size() == 2);
  CHECK(back[0].path == "routes[0].ttl");
  CHECK(back[1].message == "must be a valid HTTP header name");
  std::string text = errorMessageFromBody(body, "HTTP 400");
  CHECK(text.find("routes[0].ttl") != std::string::npos);
  CHECK(text.find("routes[1].header") != std::string::npos);

  CHECK(errorMessageFromBody(errorToJson("no config loaded yet").dump(), "x") ==
        "no config loaded yet");
  CHECK(errorMessageFromBody("<html>oops</html>", "HTTP 502") == "HTTP 502");
  CHECK(configErrorsFromBody("not json").empty());
}

TEST_CASE("error bodies that say nothing give the fallback") {
  // Found by fuzz/admin_api_fuzz.cc: {"errors": [{"p": "x"}]} gave an empty message.
  CHECK(errorMessageFromBody(R"({"errors": [{"p": "x"}]})", "HTTP 400") == "HTTP 400");
  CHECK(errorMessageFromBody(R"({"error": ""})", "HTTP 500") == "HTTP 500");
  CHECK(errorMessageFromBody(R"({"error": "", "errors": [{"path": "a", "message": "b"}]})",
                             "HTTP 400") == "a: b");
}

TEST_CASE("parseJson reports invalid JSON without throwing") {
  CHECK(parseJson("{\"a\":1}").ok());
  auto r = parseJson("{\"a\":");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "the body is not valid JSON");
}

}  // namespace
}  // namespace sticky::admin
