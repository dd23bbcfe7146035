#include "admin_api/admin_api.h"

#include <array>
#include <utility>

#include <nlohmann/json.hpp>

#include "config/json_reader.h"

namespace sticky::admin {

using nlohmann::json;

namespace {

// The answers are read with the config library's JsonReader: the same messages, paths and
// checks as a config. Unknown fields are ignored (a newer proxy may add some); absent ones are
// errors. All problems are reported, joined into one sentence.

constexpr UintRange kAnyCount{};
constexpr UintRange kPort{0, 65535};

template <class T>
Result<T> finish(JsonReader& r, T value) {
  if (!r.ok()) return fail(describe(r.errors()));
  return value;
}

void readCount(JsonReader& r, const json& obj, const std::string& where, const char* name,
               uint64_t& out) {
  if (const json* v = r.required(obj, where, name)) {
    r.readUint(*v, JsonReader::fieldPath(where, name), kAnyCount, out);
  }
}

void readBool(JsonReader& r, const json& obj, const std::string& where, const char* name,
              bool& out) {
  if (const json* v = r.required(obj, where, name)) {
    r.readBool(*v, JsonReader::fieldPath(where, name), out);
  }
}

void readString(JsonReader& r, const json& obj, const std::string& where, const char* name,
                std::string& out) {
  if (const json* v = r.required(obj, where, name)) {
    r.readString(*v, JsonReader::fieldPath(where, name), out);
  }
}

// The list at `obj`.`name`, or nullptr (a problem recorded) when absent or not a list.
const json* readList(JsonReader& r, const json& obj, const std::string& where, const char* name,
                     std::string_view of) {
  const json* v = r.required(obj, where, name);
  if (!v || !r.list(*v, JsonReader::fieldPath(where, name), of)) return nullptr;
  return v;
}

// The counters of the shared table's objects, by wire name.
template <class View>
using CountField = std::pair<const char*, uint64_t View::*>;

constexpr std::array<CountField<RouteSharedView>, 4> kRouteSharedCounts{{
    {"claims", &RouteSharedView::claims},
    {"adopted", &RouteSharedView::adopted},
    {"unavailable", &RouteSharedView::unavailable},
    {"unsyncedEntries", &RouteSharedView::unsynced_entries},
}};

constexpr std::array<CountField<SharedTableView>, 17> kSharedTableCounts{{
    {"commands", &SharedTableView::commands},
    {"errors", &SharedTableView::errors},
    {"timeouts", &SharedTableView::timeouts},
    {"rejected", &SharedTableView::rejected},
    {"connects", &SharedTableView::connects},
    {"connectFailures", &SharedTableView::connect_failures},
    {"latencyCount", &SharedTableView::latency_count},
    {"latencySumUs", &SharedTableView::latency_sum_us},
    {"refreshed", &SharedTableView::refreshed},
    {"refreshBatches", &SharedTableView::refresh_batches},
    {"refreshBatchKeys", &SharedTableView::refresh_batch_keys},
    {"reasserted", &SharedTableView::reasserted},
    {"conflicts", &SharedTableView::conflicts},
    {"moves", &SharedTableView::moves},
    {"moveConflicts", &SharedTableView::move_conflicts},
    {"eventsSent", &SharedTableView::events_sent},
    {"eventsApplied", &SharedTableView::events_applied},
}};

template <class View, size_t N>
void putCounts(json& out, const View& view, const std::array<CountField<View>, N>& fields) {
  for (const auto& [name, member] : fields) out[name] = view.*member;
}

template <class View, size_t N>
void readCounts(JsonReader& r, const json& obj, const std::string& where, View& view,
                const std::array<CountField<View>, N>& fields) {
  for (const auto& [name, member] : fields) readCount(r, obj, where, name, view.*member);
}

// `obj`.sharedTable (absent without a shared table and from proxies before 0.2.0) into `out`.
template <class View, class ReadFn>
void readOptionalObject(JsonReader& r, const json& obj, const std::string& where,
                        std::optional<View>& out, ReadFn read) {
  const json* v = JsonReader::optional(obj, "sharedTable");
  if (!v) return;
  std::string at = JsonReader::fieldPath(where, "sharedTable");
  if (!r.object(*v, at)) return;
  read(*v, at, out.emplace());
}

void readEndpoint(JsonReader& r, const json& j, const std::string& where, EndpointStatsView& e) {
  if (!r.object(j, where)) return;
  readString(r, j, where, "name", e.name);
  readString(r, j, where, "address", e.address);
  if (const json* v = r.required(j, where, "port")) {
    r.readUintAs(*v, JsonReader::fieldPath(where, "port"), kPort, e.port);
  }
  if (const json* v = r.required(j, where, "state")) {
    r.readEnum(*v, JsonReader::fieldPath(where, "state"),
               std::array{EndpointState::Active, EndpointState::Draining}, e.state);
  }
  readBool(r, j, where, "down", e.down);
  readCount(r, j, where, "sessions", e.sessions);
  readCount(r, j, where, "requests", e.requests);
}

void readRoute(JsonReader& r, const json& j, const std::string& where, RouteStatsView& route) {
  if (!r.object(j, where)) return;
  readString(r, j, where, "name", route.name);
  readCount(r, j, where, "sessions", route.sessions);
  // Added in 0.2.0: a proxy of 0.1 does not send it (its count is its own).
  route.local_sessions = route.sessions;
  if (const json* v = JsonReader::optional(j, "localSessions")) {
    r.readUint(*v, JsonReader::fieldPath(where, "localSessions"), kAnyCount, route.local_sessions);
  }
  readCount(r, j, where, "requests", route.requests);
  readCount(r, j, where, "placements", route.placements);
  readCount(r, j, where, "moves", route.moves);
  readCount(r, j, where, "evictions", route.evictions);
  readCount(r, j, where, "expirations", route.expirations);
  if (const json* eps = readList(r, j, where, "endpoints", "endpoints")) {
    std::string eps_where = JsonReader::fieldPath(where, "endpoints");
    route.endpoints.resize(eps->size());
    for (size_t i = 0; i < eps->size(); ++i) {
      readEndpoint(r, (*eps)[i], JsonReader::indexPath(eps_where, i), route.endpoints[i]);
    }
  }
  readOptionalObject(r, j, where, route.shared_table,
                     [&r](const json& o, const std::string& at, RouteSharedView& view) {
                       readCounts(r, o, at, view, kRouteSharedCounts);
                     });
}

void readSharedTable(JsonReader& r, const json& j, const std::string& where,
                     SharedTableView& view) {
  readBool(r, j, where, "connected", view.connected);
  readString(r, j, where, "primary", view.primary);
  readString(r, j, where, "replicaId", view.replica_id);
  readCounts(r, j, where, view, kSharedTableCounts);
}

}  // namespace

std::string_view toString(SessionsScope scope) {
  return scope == SessionsScope::Cluster ? "cluster" : "replica";
}

const RouteStatsView* ProxyStats::findRoute(std::string_view name) const {
  for (const auto& r : routes) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

json toJson(const ProxyStats& stats) {
  json routes = json::array();
  for (const auto& r : stats.routes) {
    json endpoints = json::array();
    for (const auto& e : r.endpoints) {
      endpoints.push_back({{"name", e.name},
                           {"address", e.address},
                           {"port", e.port},
                           {"state", std::string(toString(e.state))},
                           {"down", e.down},
                           {"sessions", e.sessions},
                           {"requests", e.requests}});
    }
    json route = {{"name", r.name},
                  {"sessions", r.sessions},
                  {"localSessions", r.local_sessions},
                  {"requests", r.requests},
                  {"placements", r.placements},
                  {"moves", r.moves},
                  {"evictions", r.evictions},
                  {"expirations", r.expirations},
                  {"endpoints", std::move(endpoints)}};
    if (r.shared_table) putCounts(route["sharedTable"], *r.shared_table, kRouteSharedCounts);
    routes.push_back(std::move(route));
  }
  json out = {{"configVersion", stats.config_version},
              {"loaded", stats.loaded},
              {"sessionsScope", std::string(toString(stats.sessions_scope))},
              {"routes", std::move(routes)}};
  if (const auto& t = stats.shared_table) {
    json shared = {
        {"connected", t->connected}, {"primary", t->primary}, {"replicaId", t->replica_id}};
    putCounts(shared, *t, kSharedTableCounts);
    out["sharedTable"] = std::move(shared);
  }
  return out;
}

json toJson(const SessionDump& dump) {
  json sessions = json::array();
  for (const auto& s : dump.sessions) {
    sessions.push_back({{"key", s.key}, {"endpoint", s.endpoint}, {"idleMs", s.idle_ms}});
  }
  return {{"route", dump.route}, {"total", dump.total}, {"sessions", std::move(sessions)}};
}

json toJson(const Applied& applied) {
  return {{"applied", true}, {"version", applied.version}};
}

json toJson(const Evicted& evicted) {
  return {{"evicted", evicted.evicted}};
}

json errorsToJson(const ConfigErrors& errors) {
  json list = json::array();
  for (const auto& e : errors) list.push_back({{"path", e.path}, {"message", e.message}});
  return {{"errors", std::move(list)}};
}

json errorToJson(std::string_view message) {
  return {{"error", std::string(message)}};
}

Result<ProxyStats> statsFromJson(const json& j) {
  JsonReader r;
  ProxyStats stats;
  if (r.object(j, "")) {
    readCount(r, j, "", "configVersion", stats.config_version);
    readBool(r, j, "", "loaded", stats.loaded);
    if (const json* v = JsonReader::optional(j, "sessionsScope")) {  // absent before 0.2.0
      r.readEnum(*v, "sessionsScope", std::array{SessionsScope::Replica, SessionsScope::Cluster},
                 stats.sessions_scope);
    }
    if (const json* routes = readList(r, j, "", "routes", "routes")) {
      stats.routes.resize(routes->size());
      for (size_t i = 0; i < routes->size(); ++i) {
        readRoute(r, (*routes)[i], JsonReader::indexPath("routes", i), stats.routes[i]);
      }
    }
    readOptionalObject(r, j, "", stats.shared_table,
                       [&r](const json& o, const std::string& at, SharedTableView& view) {
                         readSharedTable(r, o, at, view);
                       });
  }
  return finish(r, std::move(stats));
}

Result<SessionDump> sessionDumpFromJson(const json& j) {
  JsonReader r;
  SessionDump dump;
  if (r.object(j, "")) {
    readString(r, j, "", "route", dump.route);
    readCount(r, j, "", "total", dump.total);
    if (const json* sessions = readList(r, j, "", "sessions", "sessions")) {
      dump.sessions.resize(sessions->size());
      for (size_t i = 0; i < sessions->size(); ++i) {
        const json& s = (*sessions)[i];
        std::string where = JsonReader::indexPath("sessions", i);
        SessionView& view = dump.sessions[i];
        if (!r.object(s, where)) continue;
        readString(r, s, where, "key", view.key);
        readString(r, s, where, "endpoint", view.endpoint);
        readCount(r, s, where, "idleMs", view.idle_ms);
      }
    }
  }
  return finish(r, std::move(dump));
}

Result<Applied> appliedFromJson(const json& j) {
  JsonReader r;
  Applied applied;
  bool flag = false;
  if (r.object(j, "")) {
    readBool(r, j, "", "applied", flag);
    readCount(r, j, "", "version", applied.version);
  }
  if (r.ok() && !flag) r.fail("applied", "is false: the proxy did not apply the config");
  return finish(r, applied);
}

Result<Evicted> evictedFromJson(const json& j) {
  JsonReader r;
  Evicted evicted;
  if (r.object(j, "")) readCount(r, j, "", "evicted", evicted.evicted);
  return finish(r, evicted);
}

ConfigErrors configErrorsFromBody(std::string_view body) {
  ConfigErrors errors;
  auto parsed = parseJson(body);
  if (!parsed.ok() || !parsed->is_object()) return errors;
  auto it = parsed->find("errors");
  if (it == parsed->end() || !it->is_array()) return errors;
  for (const auto& e : *it) {
    if (!e.is_object()) continue;
    ConfigError err;
    if (auto p = e.find("path"); p != e.end() && p->is_string()) err.path = p->get<std::string>();
    if (auto m = e.find("message"); m != e.end() && m->is_string()) {
      err.message = m->get<std::string>();
    }
    errors.push_back(std::move(err));
  }
  return errors;
}

std::string errorMessageFromBody(std::string_view body, std::string_view fallback) {
  // An empty "error", or "errors" whose entries say nothing, would leave the caller nothing to
  // show (found by fuzz/admin_api_fuzz.cc): then the fallback.
  auto parsed = parseJson(body);
  if (parsed.ok() && parsed->is_object()) {
    if (auto it = parsed->find("error");
        it != parsed->end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      return it->get<std::string>();
    }
    std::string described = describe(configErrorsFromBody(body));
    if (!described.empty()) return described;
  }
  return std::string(fallback);
}

Result<json> parseJson(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail("the body is not valid JSON");
  return j;
}

}  // namespace sticky::admin
