#include "admin_api/admin_api.h"

#include <nlohmann/json.hpp>

namespace sticky::admin {

using nlohmann::json;

namespace {

// Small readers that report "where: what" instead of throwing. `where` is a field path such
// as "routes[0].endpoints[1].port".
class Reader {
 public:
  explicit Reader(std::string& error) : error_(error) {}

  bool object(const json& j, const std::string& where) {
    if (j.is_object()) return true;
    return fail(where, "must be an object");
  }

  const json* field(const json& obj, const char* name, const std::string& where) {
    auto it = obj.find(name);
    if (it == obj.end()) {
      fail(join(where, name), "is missing");
      return nullptr;
    }
    return &*it;
  }

  bool u64(const json& obj, const char* name, const std::string& where, uint64_t& out) {
    const json* v = field(obj, name, where);
    if (!v) return false;
    // Parsed text gives unsigned numbers; a json built in code may hold signed ones.
    bool non_negative =
        v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0);
    if (!non_negative) return fail(join(where, name), "must be a non-negative integer");
    out = v->get<uint64_t>();
    return true;
  }

  bool u16(const json& obj, const char* name, const std::string& where, uint16_t& out) {
    uint64_t v = 0;
    if (!u64(obj, name, where, v)) return false;
    if (v > 65535) return fail(join(where, name), "must be at most 65535");
    out = static_cast<uint16_t>(v);
    return true;
  }

  bool boolean(const json& obj, const char* name, const std::string& where, bool& out) {
    const json* v = field(obj, name, where);
    if (!v) return false;
    if (!v->is_boolean()) return fail(join(where, name), "must be true or false");
    out = v->get<bool>();
    return true;
  }

  bool string(const json& obj, const char* name, const std::string& where, std::string& out) {
    const json* v = field(obj, name, where);
    if (!v) return false;
    if (!v->is_string()) return fail(join(where, name), "must be a string");
    out = v->get<std::string>();
    return true;
  }

  const json* array(const json& obj, const char* name, const std::string& where) {
    const json* v = field(obj, name, where);
    if (!v) return nullptr;
    if (!v->is_array()) {
      fail(join(where, name), "must be an array");
      return nullptr;
    }
    return v;
  }

  bool fail(const std::string& where, const std::string& what) {
    if (error_.empty()) error_ = (where.empty() ? std::string("body") : where) + " " + what;
    return false;
  }

  static std::string join(const std::string& where, const char* name) {
    return where.empty() ? std::string(name) : where + "." + name;
  }
  static std::string index(const std::string& where, size_t i) {
    return where + "[" + std::to_string(i) + "]";
  }

 private:
  std::string& error_;
};

bool readState(Reader& r, const json& obj, const std::string& where, EndpointState& out) {
  std::string text;
  if (!r.string(obj, "state", where, text)) return false;
  for (EndpointState s : {EndpointState::Active, EndpointState::Draining}) {
    if (text == toString(s)) {
      out = s;
      return true;
    }
  }
  return r.fail(Reader::join(where, "state"), "must be Active or Draining");
}

bool readEndpoint(Reader& r, const json& j, const std::string& where, EndpointStatsView& e) {
  return r.object(j, where) && r.string(j, "name", where, e.name) &&
         r.string(j, "address", where, e.address) && r.u16(j, "port", where, e.port) &&
         readState(r, j, where, e.state) && r.boolean(j, "down", where, e.down) &&
         r.u64(j, "sessions", where, e.sessions) && r.u64(j, "requests", where, e.requests);
}

bool readRoute(Reader& r, const json& j, const std::string& where, RouteStatsView& route) {
  if (!(r.object(j, where) && r.string(j, "name", where, route.name) &&
        r.u64(j, "sessions", where, route.sessions) &&
        r.u64(j, "requests", where, route.requests) &&
        r.u64(j, "placements", where, route.placements) && r.u64(j, "moves", where, route.moves) &&
        r.u64(j, "evictions", where, route.evictions) &&
        r.u64(j, "expirations", where, route.expirations))) {
    return false;
  }
  const json* eps = r.array(j, "endpoints", where);
  if (!eps) return false;
  std::string eps_where = Reader::join(where, "endpoints");
  for (size_t i = 0; i < eps->size(); ++i) {
    EndpointStatsView e;
    if (!readEndpoint(r, (*eps)[i], Reader::index(eps_where, i), e)) return false;
    route.endpoints.push_back(std::move(e));
  }
  return true;
}

}  // namespace

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
    routes.push_back({{"name", r.name},
                      {"sessions", r.sessions},
                      {"requests", r.requests},
                      {"placements", r.placements},
                      {"moves", r.moves},
                      {"evictions", r.evictions},
                      {"expirations", r.expirations},
                      {"endpoints", std::move(endpoints)}});
  }
  return {{"configVersion", stats.config_version},
          {"loaded", stats.loaded},
          {"routes", std::move(routes)}};
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

Result<ProxyStats, std::string> statsFromJson(const json& j) {
  std::string error;
  Reader r(error);
  ProxyStats stats;
  if (!(r.object(j, "") && r.u64(j, "configVersion", "", stats.config_version) &&
        r.boolean(j, "loaded", "", stats.loaded))) {
    return unexpected(error);
  }
  const json* routes = r.array(j, "routes", "");
  if (!routes) return unexpected(error);
  for (size_t i = 0; i < routes->size(); ++i) {
    RouteStatsView route;
    if (!readRoute(r, (*routes)[i], Reader::index("routes", i), route)) return unexpected(error);
    stats.routes.push_back(std::move(route));
  }
  return stats;
}

Result<SessionDump, std::string> sessionDumpFromJson(const json& j) {
  std::string error;
  Reader r(error);
  SessionDump dump;
  if (!(r.object(j, "") && r.string(j, "route", "", dump.route) &&
        r.u64(j, "total", "", dump.total))) {
    return unexpected(error);
  }
  const json* sessions = r.array(j, "sessions", "");
  if (!sessions) return unexpected(error);
  for (size_t i = 0; i < sessions->size(); ++i) {
    const json& s = (*sessions)[i];
    std::string where = Reader::index("sessions", i);
    SessionView view;
    if (!(r.object(s, where) && r.string(s, "key", where, view.key) &&
          r.string(s, "endpoint", where, view.endpoint) &&
          r.u64(s, "idleMs", where, view.idle_ms))) {
      return unexpected(error);
    }
    dump.sessions.push_back(std::move(view));
  }
  return dump;
}

Result<Applied, std::string> appliedFromJson(const json& j) {
  std::string error;
  Reader r(error);
  Applied applied;
  bool flag = false;
  if (!(r.object(j, "") && r.boolean(j, "applied", "", flag) &&
        r.u64(j, "version", "", applied.version))) {
    return unexpected(error);
  }
  if (!flag) return unexpected(std::string("applied is false"));
  return applied;
}

Result<Evicted, std::string> evictedFromJson(const json& j) {
  std::string error;
  Reader r(error);
  Evicted evicted;
  if (!(r.object(j, "") && r.u64(j, "evicted", "", evicted.evicted))) return unexpected(error);
  return evicted;
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
  auto parsed = parseJson(body);
  if (parsed.ok() && parsed->is_object()) {
    if (auto it = parsed->find("error"); it != parsed->end() && it->is_string()) {
      return it->get<std::string>();
    }
    ConfigErrors errors = configErrorsFromBody(body);
    if (!errors.empty()) {
      std::string text;
      for (const auto& e : errors) {
        if (!text.empty()) text += "; ";
        text += e.toString();
      }
      return text;
    }
  }
  return std::string(fallback);
}

Result<json, std::string> parseJson(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return unexpected(std::string("the body is not valid JSON"));
  return j;
}

}  // namespace sticky::admin
