// Reading the proxy config: JSON (or YAML converted to JSON, so there is one code path) into the
// model through JsonReader, then normalize() and validate(). Every problem is collected with its
// field path; nothing here throws out of the public functions.

#include "config/reader.h"

#include <array>
#include <exception>
#include <utility>

#include <nlohmann/json.hpp>

#include "config/json_reader.h"
#include "config/schema.h"
#include "config/validate.h"
#include "config/yaml.h"

namespace sticky {
namespace {

using nlohmann::json;

// The proxy config's fields read with JsonReader: names, defaults, examples in the messages.
class ConfigReader : public JsonReader {
 public:
  // Checks that `j` is an object (`example` shows one) and every field is known.
  bool objectOf(const json& j, const std::string& path,
                std::initializer_list<std::string_view> known, std::string_view example) {
    if (!object(j, path, example)) return false;
    knownFields(j, path, known);
    return true;
  }

  void missing(const std::string& path, std::string_view hint) {
    fail(path, "is required; set it to " + std::string(hint));
  }

  void readLimits(const json& j, const std::string& path, Limits& l) {
    if (!objectOf(
            j, path,
            {"maxHeaderBytes", "maxHeaderCount", "clientHeaderTimeout", "keepAliveIdleTimeout",
             "upstreamConnectTimeout", "upstreamResponseTimeout", "endpointDownPeriod",
             "drainTimeout", "upstreamMaxIdlePerEndpoint", "maxConnections", "clientBodyTimeout",
             "clientSendTimeout", "upstreamReadTimeout", "tunnelIdleTimeout"},
            "such as {maxHeaderBytes: 32768, upstreamConnectTimeout: 2s}")) {
      return;
    }
    if (auto* v = optional(j, "maxHeaderBytes"))
      readUintAs(*v, fieldPath(path, "maxHeaderBytes"), schema::kMaxHeaderBytesRange,
                 l.max_header_bytes);
    if (auto* v = optional(j, "maxHeaderCount"))
      readUintAs(*v, fieldPath(path, "maxHeaderCount"), schema::kMaxHeaderCountRange,
                 l.max_header_count);
    if (auto* v = optional(j, "upstreamMaxIdlePerEndpoint"))
      readUintAs(*v, fieldPath(path, "upstreamMaxIdlePerEndpoint"), schema::kMaxIdleRange,
                 l.upstream_max_idle_per_endpoint);
    if (auto* v = optional(j, "maxConnections"))
      readUintAs(*v, fieldPath(path, "maxConnections"), schema::kMaxConnectionsRange,
                 l.max_connections);
    std::pair<const char*, Duration*> durations[] = {
        {"clientHeaderTimeout", &l.client_header_timeout},
        {"keepAliveIdleTimeout", &l.keep_alive_idle_timeout},
        {"upstreamConnectTimeout", &l.upstream_connect_timeout},
        {"upstreamResponseTimeout", &l.upstream_response_timeout},
        {"endpointDownPeriod", &l.endpoint_down_period},
        {"drainTimeout", &l.drain_timeout},
        {"clientBodyTimeout", &l.client_body_timeout},
        {"clientSendTimeout", &l.client_send_timeout},
        {"upstreamReadTimeout", &l.upstream_read_timeout},
        {"tunnelIdleTimeout", &l.tunnel_idle_timeout},
    };
    for (auto& [name, out] : durations) {
      if (auto* v = optional(j, name)) readDuration(*v, fieldPath(path, name), *out);
    }
  }

  void readHeaders(const json& j, const std::string& path, HeaderNames& h) {
    if (!objectOf(
            j, path, {"movedFrom", "sessionMoved"},
            "such as {movedFrom: x-sticky-moved-from, sessionMoved: x-sticky-session-moved}")) {
      return;
    }
    if (auto* v = optional(j, "movedFrom"))
      readString(*v, fieldPath(path, "movedFrom"), h.moved_from);
    if (auto* v = optional(j, "sessionMoved"))
      readString(*v, fieldPath(path, "sessionMoved"), h.session_moved);
  }

  void readRedis(const json& j, const std::string& path, RedisConfig& r) {
    if (!objectOf(
            j, path,
            {"address", "sentinels", "masterName", "username", "passwordFile", "tls", "caFile",
             "serverName", "insecureSkipVerify", "certFile", "keyFile", "keyPrefix",
             "connectTimeout", "commandTimeout"},
            "such as {address: redis.kube-sticky:6379} or {sentinels: [redis-sentinel:26379], "
            "masterName: mymaster}")) {
      return;
    }
    std::pair<const char*, std::string*> strings[] = {
        {"address", &r.address},        {"masterName", &r.master_name},
        {"username", &r.username},      {"passwordFile", &r.password_file},
        {"keyPrefix", &r.key_prefix},   {"caFile", &r.ca_file},
        {"serverName", &r.server_name}, {"certFile", &r.cert_file},
        {"keyFile", &r.key_file},
    };
    for (auto& [name, out] : strings) {
      if (auto* v = optional(j, name)) readString(*v, fieldPath(path, name), *out);
    }
    if (auto* v = optional(j, "sentinels"))
      readStringList(*v, fieldPath(path, "sentinels"), r.sentinels);
    if (auto* v = optional(j, "tls")) readBool(*v, fieldPath(path, "tls"), r.tls);
    if (auto* v = optional(j, "insecureSkipVerify"))
      readBool(*v, fieldPath(path, "insecureSkipVerify"), r.insecure_skip_verify);
    if (auto* v = optional(j, "connectTimeout"))
      readDuration(*v, fieldPath(path, "connectTimeout"), r.connect_timeout);
    if (auto* v = optional(j, "commandTimeout"))
      readDuration(*v, fieldPath(path, "commandTimeout"), r.command_timeout);
  }

  void readSharedTable(const json& j, const std::string& path, SharedTableConfig& t) {
    if (!objectOf(j, path, {"redis"}, "such as {redis: {address: redis:6379}}")) return;
    if (auto* v = optional(j, "redis")) {
      if (v->is_null()) return;
      readRedis(*v, fieldPath(path, "redis"), t.redis.emplace());
    }
  }

  void readEndpoint(const json& j, const std::string& path, EndpointConfig& e) {
    if (!objectOf(j, path, {"name", "address", "port", "state"},
                  "such as {name: chat-0, address: 10.0.0.5, port: 8080}")) {
      return;
    }
    if (auto* v = optional(j, "name")) {
      readString(*v, fieldPath(path, "name"), e.name);
    } else {
      missing(fieldPath(path, "name"), "the endpoint's name, such as the pod name \"chat-0\"");
    }
    if (auto* v = optional(j, "address")) {
      readString(*v, fieldPath(path, "address"), e.address);
    } else {
      missing(fieldPath(path, "address"), "the endpoint's IP address, such as \"10.0.0.5\"");
    }
    if (auto* v = optional(j, "port")) {
      readUintAs(*v, fieldPath(path, "port"), schema::kPortRange, e.port);
    } else {
      missing(fieldPath(path, "port"), "the endpoint's port, such as 8080");
    }
    if (auto* v = optional(j, "state")) {
      readEnum(*v, fieldPath(path, "state"),
               std::array{EndpointState::Active, EndpointState::Draining}, e.state);
    }
  }

  void readMatch(const json& j, const std::string& path, RouteMatch& m) {
    if (!objectOf(j, path, {"hosts", "pathPrefix"},
                  "such as {hosts: [chat.example.com], pathPrefix: /}")) {
      return;
    }
    if (auto* v = optional(j, "hosts")) readStringList(*v, fieldPath(path, "hosts"), m.hosts);
    if (auto* v = optional(j, "pathPrefix"))
      readString(*v, fieldPath(path, "pathPrefix"), m.path_prefix);
  }

  void readRoute(const json& j, const std::string& path, RouteConfig& r) {
    if (!objectOf(j, path,
                  {"name", "match", "header", "ttl", "maxSessions", "placement", "onMissingKey",
                   "onEndpointLost", "endpoints"},
                  "such as {name: shop/chat, header: client-id, endpoints: [...]}")) {
      return;
    }
    if (auto* v = optional(j, "name")) {
      readString(*v, fieldPath(path, "name"), r.name);
    } else {
      missing(fieldPath(path, "name"), "\"namespace/name\", such as \"shop/chat\"");
    }
    if (auto* v = optional(j, "match")) readMatch(*v, fieldPath(path, "match"), r.match);
    if (auto* v = optional(j, "header")) {
      readString(*v, fieldPath(path, "header"), r.header);
    } else {
      missing(fieldPath(path, "header"), "the session key header, such as \"client-id\"");
    }
    if (auto* v = optional(j, "ttl")) readDuration(*v, fieldPath(path, "ttl"), r.ttl);
    if (auto* v = optional(j, "maxSessions"))
      readUint(*v, fieldPath(path, "maxSessions"), schema::kMaxSessionsRange, r.max_sessions);
    if (auto* v = optional(j, "placement")) {
      readEnum(
          *v, fieldPath(path, "placement"),
          std::array{Placement::LeastSessions, Placement::ConsistentHash, Placement::RoundRobin},
          r.placement);
    }
    if (auto* v = optional(j, "onMissingKey")) {
      readEnum(*v, fieldPath(path, "onMissingKey"),
               std::array{OnMissingKey::Balance, OnMissingKey::Reject}, r.on_missing_key);
    }
    if (auto* v = optional(j, "onEndpointLost")) {
      readEnum(*v, fieldPath(path, "onEndpointLost"),
               std::array{OnEndpointLost::Reassign, OnEndpointLost::Reject}, r.on_endpoint_lost);
    }
    if (auto* v = optional(j, "endpoints")) {
      std::string epath = fieldPath(path, "endpoints");
      if (!v->is_array()) {
        fail(epath,
             "must be a list of endpoints such as [{name: chat-0, address: 10.0.0.5, "
             "port: 8080}], not " +
                 std::string(typeName(*v)));
      } else {
        r.endpoints.resize(v->size());
        for (size_t i = 0; i < v->size(); ++i) {
          readEndpoint((*v)[i], epath + "[" + std::to_string(i) + "]", r.endpoints[i]);
        }
      }
    }
  }

  void readConfig(const json& j, ProxyConfig& c) {
    if (!j.is_object()) {
      fail("",
           "the config must be an object with fields such as version, listen and routes, "
           "not " +
               std::string(typeName(j)));
      return;
    }
    objectOf(j, "", {"version", "listen", "limits", "headers", "sharedTable", "routes"}, "");
    if (auto* v = optional(j, "version")) readUint(*v, "version", schema::kVersionRange, c.version);
    if (auto* v = optional(j, "listen")) readString(*v, "listen", c.listen);
    if (auto* v = optional(j, "limits")) readLimits(*v, "limits", c.limits);
    if (auto* v = optional(j, "headers")) readHeaders(*v, "headers", c.headers);
    if (auto* v = optional(j, "sharedTable")) readSharedTable(*v, "sharedTable", c.shared_table);
    if (auto* v = optional(j, "routes")) {
      if (!v->is_array()) {
        fail("routes", "must be a list of routes, not " + std::string(typeName(*v)));
      } else {
        c.routes.resize(v->size());
        for (size_t i = 0; i < v->size(); ++i) {
          readRoute((*v)[i], "routes[" + std::to_string(i) + "]", c.routes[i]);
        }
      }
    }
  }
};

}  // namespace

Result<ProxyConfig, ConfigErrors> proxyConfigFromJson(const nlohmann::json& j) {
  ConfigReader reader;
  ProxyConfig config;
  try {
    reader.readConfig(j, config);
  } catch (const std::exception& e) {
    // Reading checks every type first; this is a safety net, not a path we expect.
    reader.fail("", std::string("could not read the config: ") + e.what());
  }
  normalize(config);
  ConfigErrors errors = reader.takeErrors();
  for (ConfigError& e : validate(config)) {
    if (!reader.covered(e.path)) errors.push_back(std::move(e));
  }
  if (!errors.empty()) return unexpected(std::move(errors));
  return config;
}

Result<ProxyConfig, ConfigErrors> parseProxyConfig(std::string_view text, ConfigFormat format) {
  if (format == ConfigFormat::Auto) {
    size_t first = text.find_first_not_of(" \t\r\n");
    format = (first != text.npos && text[first] == '{') ? ConfigFormat::Json : ConfigFormat::Yaml;
  }
  if (text.find_first_not_of(" \t\r\n") == text.npos) {
    return unexpected(ConfigErrors{
        {"", "the config is empty; give at least {\"routes\": []} (JSON) or routes: [] (YAML)"}});
  }
  auto parsed = format == ConfigFormat::Json ? parseJsonText(text) : parseYamlText(text);
  if (!parsed) return unexpected(std::move(parsed).error());
  return proxyConfigFromJson(*parsed);
}

}  // namespace sticky
