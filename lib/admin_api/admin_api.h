#pragma once
// The admin protocol's JSON shapes, in one place for the server (proxy) and the client
// (operator). Field names on the wire are camelCase; C++ fields are snake_case.
//
//   stats:    {"configVersion":7,"loaded":true,"sessionsScope":"replica","routes":[
//              {"name":"shop/chat","sessions":3,"localSessions":3,
//              "requests":10,"placements":3,"moves":0,"evictions":0,"expirations":0,
//              "endpoints":[{"name":"chat-0","address":"10.0.0.5","port":8080,
//                            "state":"Active","down":false,"sessions":2,"requests":7}],
//              "sharedTable":{"claims":3,"adopted":1,"unavailable":0,"unsyncedEntries":0}}],
//              "sharedTable":{"connected":true,"primary":"10.0.0.9:6379",...}}
//              (both "sharedTable" objects only with a shared table: SharedTableView)
//   sessions: {"route":"shop/chat","total":3,"sessions":[{"key":"42","endpoint":"chat-0",
//              "idleMs":1200}]}
//   errors:   {"errors":[{"path":"routes[0].ttl","message":"..."}]}  (invalid config)
//             {"error":"one sentence"}                                  (anything else)
//   applied:  {"applied":true,"version":7}        evicted: {"evicted":2}

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "config/proxy_config.h"

namespace sticky::admin {

struct EndpointStatsView {
  std::string name;
  std::string address;
  uint16_t port = 0;
  EndpointState state = EndpointState::Active;
  bool down = false;  // marked down after a refused/reset connection
  uint64_t sessions = 0;
  uint64_t requests = 0;

  bool operator==(const EndpointStatsView&) const = default;
};

/// Whose sessions `sessions` counts: this proxy's table, or every replica's (the shared table's
/// count in Redis, at most a few seconds old).
enum class SessionsScope { Replica, Cluster };
std::string_view toString(SessionsScope scope);

/// A route's new keys with a shared table (counters since the proxy started).
struct RouteSharedView {
  uint64_t claims = 0;            // new keys on this replica answered through Redis
  uint64_t adopted = 0;           // ... that another replica had already placed
  uint64_t unavailable = 0;       // ... placed locally: Redis did not answer in time
  uint64_t unsynced_entries = 0;  // entries of this replica's table Redis has not confirmed

  bool operator==(const RouteSharedView&) const = default;
};

struct RouteStatsView {
  std::string name;
  uint64_t sessions = 0;        // in `ProxyStats::sessions_scope`
  uint64_t local_sessions = 0;  // in this proxy's table (= sessions when the scope is Replica)
  uint64_t requests = 0;
  uint64_t placements = 0;
  uint64_t moves = 0;
  uint64_t evictions = 0;
  uint64_t expirations = 0;
  std::vector<EndpointStatsView> endpoints;
  std::optional<RouteSharedView> shared_table;  // with a shared table only

  bool operator==(const RouteStatsView&) const = default;
};

/// This replica's shared table: its connections to Redis and its refresh rounds. The counters
/// count since the proxy started, like their Prometheus series (docs/operations.md).
struct SharedTableView {
  bool connected = false;  // every connection to the primary is up (the breaker is closed)
  std::string primary;     // "host:port" of the primary in use, empty while there is none
  std::string replica_id;  // this replica's name in Redis (CLIENT LIST, the load hashes)
  // Redis commands
  uint64_t commands = 0;
  uint64_t errors = 0;
  uint64_t timeouts = 0;
  uint64_t rejected = 0;  // failed at once: not connected
  uint64_t connects = 0;
  uint64_t connect_failures = 0;
  uint64_t latency_count = 0;   // replies received in time
  uint64_t latency_sum_us = 0;  // their total latency: the mean is sum / count
  // the table's work
  uint64_t refreshed = 0;
  uint64_t refresh_batches = 0;
  uint64_t refresh_batch_keys = 0;
  uint64_t reasserted = 0;
  uint64_t conflicts = 0;
  uint64_t moves = 0;
  uint64_t move_conflicts = 0;
  uint64_t events_sent = 0;
  uint64_t events_applied = 0;

  bool operator==(const SharedTableView&) const = default;
};

struct ProxyStats {
  uint64_t config_version = 0;
  bool loaded = false;
  SessionsScope sessions_scope = SessionsScope::Replica;
  std::vector<RouteStatsView> routes;
  std::optional<SharedTableView> shared_table;  // with a shared table only

  const RouteStatsView* findRoute(std::string_view name) const;
  bool operator==(const ProxyStats&) const = default;
};

struct SessionView {
  std::string key;
  std::string endpoint;  // endpoint name
  uint64_t idle_ms = 0;

  bool operator==(const SessionView&) const = default;
};

struct SessionDump {
  std::string route;
  uint64_t total = 0;  // sessions in the table; `sessions` holds at most the requested limit
  std::vector<SessionView> sessions;

  bool operator==(const SessionDump&) const = default;
};

struct Applied {
  uint64_t version = 0;
};

struct Evicted {
  uint64_t evicted = 0;
};

nlohmann::json toJson(const ProxyStats& stats);
nlohmann::json toJson(const SessionDump& dump);
nlohmann::json toJson(const Applied& applied);
nlohmann::json toJson(const Evicted& evicted);
/// {"errors":[{"path":..,"message":..}, ...]}
nlohmann::json errorsToJson(const ConfigErrors& errors);
/// {"error":"..."}
nlohmann::json errorToJson(std::string_view message);

// Parsing never throws. Malformed input gives one Error naming every offending field, read by
// the config library's JsonReader ("routes[0].endpoints[1].port: must be an integer between 0
// and 65535, not 70000"). Unknown fields are ignored, so a newer proxy may add some.
Result<ProxyStats> statsFromJson(const nlohmann::json& j);
Result<SessionDump> sessionDumpFromJson(const nlohmann::json& j);
Result<Applied> appliedFromJson(const nlohmann::json& j);
Result<Evicted> evictedFromJson(const nlohmann::json& j);
/// The message of an error body: the "error" text, or every "errors" entry joined with "; "
/// as "path: message". Falls back to `fallback` when the body has neither.
std::string errorMessageFromBody(std::string_view body, std::string_view fallback);
/// The "errors" list of an error body (empty if it has none).
ConfigErrors configErrorsFromBody(std::string_view body);

/// Parses a JSON text without throwing.
Result<nlohmann::json> parseJson(std::string_view text);

}  // namespace sticky::admin
