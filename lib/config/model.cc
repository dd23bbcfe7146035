#include "config/model.h"

#include <nlohmann/json.hpp>

#include "common/strings.h"

namespace sticky {

using nlohmann::json;

std::string_view toString(Placement p) {
  switch (p) {
    case Placement::LeastSessions:
      return "LeastSessions";
    case Placement::ConsistentHash:
      return "ConsistentHash";
    case Placement::RoundRobin:
      return "RoundRobin";
  }
  return "Unknown";
}

std::string_view toString(OnMissingKey m) {
  switch (m) {
    case OnMissingKey::Balance:
      return "Balance";
    case OnMissingKey::Reject:
      return "Reject";
  }
  return "Unknown";
}

std::string_view toString(OnEndpointLost l) {
  switch (l) {
    case OnEndpointLost::Reassign:
      return "Reassign";
    case OnEndpointLost::Reject:
      return "Reject";
  }
  return "Unknown";
}

std::string_view toString(EndpointState s) {
  switch (s) {
    case EndpointState::Active:
      return "Active";
    case EndpointState::Draining:
      return "Draining";
  }
  return "Unknown";
}

void normalize(ProxyConfig& config) {
  config.headers.moved_from = asciiLower(config.headers.moved_from);
  config.headers.session_moved = asciiLower(config.headers.session_moved);
  for (RouteConfig& r : config.routes) {
    r.header = asciiLower(r.header);
    for (std::string& h : r.match.hosts) h = asciiLower(h);
  }
}

nlohmann::json toJson(const ProxyConfig& config) {
  json routes = json::array();
  for (const RouteConfig& r : config.routes) {
    json endpoints = json::array();
    for (const EndpointConfig& e : r.endpoints) {
      endpoints.push_back({{"name", e.name},
                           {"address", e.address},
                           {"port", e.port},
                           {"state", toString(e.state)}});
    }
    routes.push_back({
        {"name", r.name},
        {"match", {{"hosts", r.match.hosts}, {"pathPrefix", r.match.path_prefix}}},
        {"header", r.header},
        {"ttl", formatDuration(r.ttl)},
        {"maxSessions", r.max_sessions},
        {"placement", toString(r.placement)},
        {"onMissingKey", toString(r.on_missing_key)},
        {"onEndpointLost", toString(r.on_endpoint_lost)},
        {"endpoints", std::move(endpoints)},
    });
  }
  const Limits& l = config.limits;
  json out = {
      {"version", config.version},
      {"listen", config.listen},
      {"limits",
       {
           {"maxHeaderBytes", l.max_header_bytes},
           {"maxHeaderCount", l.max_header_count},
           {"clientHeaderTimeout", formatDuration(l.client_header_timeout)},
           {"keepAliveIdleTimeout", formatDuration(l.keep_alive_idle_timeout)},
           {"upstreamConnectTimeout", formatDuration(l.upstream_connect_timeout)},
           {"upstreamResponseTimeout", formatDuration(l.upstream_response_timeout)},
           {"endpointDownPeriod", formatDuration(l.endpoint_down_period)},
           {"drainTimeout", formatDuration(l.drain_timeout)},
           {"upstreamMaxIdlePerEndpoint", l.upstream_max_idle_per_endpoint},
           {"maxConnections", l.max_connections},
           {"clientBodyTimeout", formatDuration(l.client_body_timeout)},
           {"clientSendTimeout", formatDuration(l.client_send_timeout)},
           {"upstreamReadTimeout", formatDuration(l.upstream_read_timeout)},
           {"tunnelIdleTimeout", formatDuration(l.tunnel_idle_timeout)},
       }},
      {"headers",
       {{"movedFrom", config.headers.moved_from}, {"sessionMoved", config.headers.session_moved}}},
      {"routes", std::move(routes)},
  };
  if (const auto& redis = config.shared_table.redis) {
    out["sharedTable"] = {{"redis",
                           {
                               {"address", redis->address},
                               {"sentinels", redis->sentinels},
                               {"masterName", redis->master_name},
                               {"username", redis->username},
                               {"passwordFile", redis->password_file},
                               {"tls", redis->tls},
                               {"caFile", redis->ca_file},
                               {"serverName", redis->server_name},
                               {"insecureSkipVerify", redis->insecure_skip_verify},
                               {"certFile", redis->cert_file},
                               {"keyFile", redis->key_file},
                               {"keyPrefix", redis->key_prefix},
                               {"connectTimeout", formatDuration(redis->connect_timeout)},
                               {"commandTimeout", formatDuration(redis->command_timeout)},
                           }}};
  }
  return out;
}

std::string configVersionHex(uint64_t version) {
  constexpr std::string_view kDigits = "0123456789abcdef";
  std::string out(16, '0');
  for (size_t i = out.size(); i-- > 0; version >>= 4) out[i] = kDigits[version & 0xf];
  return out;
}

std::string toJsonString(const ProxyConfig& config, int indent) {
  return toJson(config).dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace sticky
