// validate(): the semantic checks of a ProxyConfig, each problem with its field path and one
// sentence saying what to write instead. Syntax checks of names and addresses are here too.

#include "config/validate.h"

#include <arpa/inet.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "common/strings.h"
#include "config/json_reader.h"
#include "config/schema.h"

namespace sticky {
namespace {

bool isDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && !(c == '-' && i > 0 && i + 1 < s.size())) return false;
  }
  return true;
}

// Lower-case DNS subdomain (RFC 1123), as Kubernetes names are.
bool isDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (!isDnsLabel(label)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool isRouteName(std::string_view s) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return false;
  return isDnsLabel(s.substr(0, slash)) && isDnsSubdomain(s.substr(slash + 1));
}

bool isHostPattern(std::string_view host) {
  std::string h = asciiLower(host);
  std::string_view v = h;
  if (v.starts_with("*.")) v.remove_prefix(2);
  return isDnsSubdomain(v);
}

bool isEndpointName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool isIpLiteral(const std::string& s) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// "host:port": IPv4 literal, [IPv6] literal or a DNS name; port 0..65535. An empty host (":8080")
// is not one: the server would refuse it, so the config does too.
bool isListenAddress(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view host = s.substr(0, colon);
  std::string_view port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) return false;
  if (host.empty()) return false;
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    std::string inner(host.substr(1, host.size() - 2));
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET6, inner.c_str(), buf) == 1;
  }
  std::string h(host);
  unsigned char buf[sizeof(struct in_addr)];
  if (inet_pton(AF_INET, h.c_str(), buf) == 1) return true;
  return isDnsSubdomain(asciiLower(h));
}

bool isPathPrefix(std::string_view p) {
  if (p.empty() || p.front() != '/') return false;
  for (char c : p) {
    if (c <= ' ' || c == '?' || c == '#' || c == 0x7f) return false;
  }
  return true;
}

void validateLimits(const Limits& l, ConfigErrors& errors) {
  if (!schema::kMaxHeaderBytesRange.contains(l.max_header_bytes)) {
    errors.push_back({"limits.maxHeaderBytes", schema::kMaxHeaderBytesRange.describe()});
  }
  if (!schema::kMaxHeaderCountRange.contains(l.max_header_count)) {
    errors.push_back({"limits.maxHeaderCount", schema::kMaxHeaderCountRange.describe()});
  }
  if (!schema::kMaxIdleRange.contains(l.upstream_max_idle_per_endpoint)) {
    errors.push_back({"limits.upstreamMaxIdlePerEndpoint", schema::kMaxIdleRange.describe()});
  }
  if (!schema::kMaxConnectionsRange.contains(l.max_connections)) {
    errors.push_back({"limits.maxConnections", schema::kMaxConnectionsRange.describe()});
  }
  std::pair<const char*, Duration> durations[] = {
      {"clientHeaderTimeout", l.client_header_timeout},
      {"keepAliveIdleTimeout", l.keep_alive_idle_timeout},
      {"upstreamConnectTimeout", l.upstream_connect_timeout},
      {"upstreamResponseTimeout", l.upstream_response_timeout},
      {"endpointDownPeriod", l.endpoint_down_period},
      {"drainTimeout", l.drain_timeout},
      {"clientBodyTimeout", l.client_body_timeout},
      {"clientSendTimeout", l.client_send_timeout},
      {"upstreamReadTimeout", l.upstream_read_timeout},
      {"tunnelIdleTimeout", l.tunnel_idle_timeout},
  };
  for (auto& [name, d] : durations) {
    if (d.count() <= 0) {
      errors.push_back({std::string("limits.") + name,
                        "must be a positive duration " + std::string(schema::kDurationHint)});
    }
  }
}

// The file exists and this process may read it; otherwise why not, in the system's words.
std::optional<std::string> unreadable(const std::string& file) {
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) return std::string(std::strerror(errno));
  std::fclose(f);
  return std::nullopt;
}

void validateRedisTls(const RedisConfig& r, const std::string& path, ConfigErrors& errors) {
  std::pair<const char*, const std::string*> files[] = {
      {"caFile", &r.ca_file}, {"certFile", &r.cert_file}, {"keyFile", &r.key_file}};
  if (!r.tls) {
    std::pair<const char*, bool> set[] = {{"caFile", !r.ca_file.empty()},
                                          {"serverName", !r.server_name.empty()},
                                          {"insecureSkipVerify", r.insecure_skip_verify},
                                          {"certFile", !r.cert_file.empty()},
                                          {"keyFile", !r.key_file.empty()}};
    for (auto [name, given] : set) {
      if (given) {
        errors.push_back(
            {path + "." + name, "is only used with TLS; set tls: true (--redis-tls) or remove it"});
      }
    }
    return;
  }
  if (r.cert_file.empty() != r.key_file.empty()) {
    errors.push_back({path + (r.cert_file.empty() ? ".certFile" : ".keyFile"),
                      "a client certificate needs both certFile and keyFile; give both (for a "
                      "server with tls-auth-clients yes) or neither"});
  }
  for (auto [name, file] : files) {
    if (file->empty()) continue;
    if (auto why = unreadable(*file)) {
      errors.push_back({path + "." + name, "cannot read " + quote(*file) + " (" + *why +
                                               "); mount the file there or fix the path"});
    }
  }
  if (r.server_name.find_first_of(" \t/") != std::string::npos) {
    errors.push_back({path + ".serverName",
                      "must be a host name or IP address such as \"redis.example.com\", not " +
                          quote(r.server_name)});
  }
}

void validateRedis(const RedisConfig& r, ConfigErrors& errors) {
  const std::string path = "sharedTable.redis";
  auto bad_address = [](std::string_view example, const std::string& value) {
    return "must be \"host:port\" such as " + std::string(example) + ", not " + quote(value);
  };
  if (r.address.empty() == r.sentinels.empty()) {
    errors.push_back({path,
                      "give either address (one Redis primary, such as "
                      "\"redis.kube-sticky:6379\") or sentinels and masterName (a primary "
                      "found through Redis Sentinel), not " +
                          std::string(r.address.empty() ? "neither" : "both")});
  }
  if (!r.address.empty() && !isListenAddress(r.address)) {
    errors.push_back({path + ".address", bad_address("\"redis:6379\"", r.address)});
  }
  for (size_t i = 0; i < r.sentinels.size(); ++i) {
    if (!isListenAddress(r.sentinels[i])) {
      errors.push_back({path + ".sentinels[" + std::to_string(i) + "]",
                        bad_address("\"redis-sentinel:26379\"", r.sentinels[i])});
    }
  }
  if (!r.sentinels.empty() && r.master_name.empty()) {
    errors.push_back({path + ".masterName",
                      "is required with sentinels; set it to the name the Sentinels monitor the "
                      "primary as, such as \"mymaster\""});
  }
  validateRedisTls(r, path, errors);
  for (auto [name, d] : {std::pair{"connectTimeout", r.connect_timeout},
                         std::pair{"commandTimeout", r.command_timeout}}) {
    if (d.count() <= 0) {
      errors.push_back(
          {path + "." + name, "must be a positive duration " + std::string(schema::kDurationHint)});
    }
  }
}

// "routes[0]" + "ttl" -> "routes[0].ttl" ("" + "ttl" -> "ttl").
std::string at(std::string_view path, std::string_view field) {
  return JsonReader::fieldPath(path, field);
}

// "routes[0]" + "endpoints" + 2 -> "routes[0].endpoints[2]".
std::string item(std::string_view path, std::string_view list, size_t index) {
  return JsonReader::indexPath(JsonReader::fieldPath(path, list), index);
}

// "must be an HTTP header name (...), such as "client-id", not "a b"". Built by appending: GCC 12
// reports a false -Warray-bounds on the operator+ chain once inlined.
std::string notAHeaderName(std::string_view example, std::string_view value) {
  std::string out = schema::kHeaderTokenHint;
  out += ", such as ";
  out += quote(example);
  out += ", not ";
  out += quote(value);
  return out;
}

void appendEndpoint(const EndpointConfig& e, const std::string& epath, ConfigErrors& errors) {
  if (e.name.empty()) {
    errors.push_back({at(epath, "name"),
                      "is required; set it to the endpoint's name, such as the pod name "
                      "\"chat-0\""});
  } else if (!isEndpointName(e.name)) {
    errors.push_back({at(epath, "name"),
                      "must be 1-253 letters, digits, '.', '-' or '_' (it is sent in a header), "
                      "such as \"chat-0\", not " +
                          quote(e.name)});
  }
  if (e.address.empty()) {
    errors.push_back({at(epath, "address"),
                      "is required; set it to the endpoint's IP address, such as \"10.0.0.5\""});
  } else if (!isIpLiteral(e.address)) {
    errors.push_back({at(epath, "address"),
                      "must be an IPv4 or IPv6 address such as \"10.0.0.5\" or \"fd00::5\" (not "
                      "a host name), not " +
                          quote(e.address)});
  }
  if (!schema::kPortRange.contains(e.port)) {
    errors.push_back({at(epath, "port"), schema::kPortRange.describe()});
  }
}

void appendRoute(const RouteConfig& r, const std::string& path, ConfigErrors& errors) {
  if (r.name.empty()) {
    errors.push_back({at(path, "name"),
                      "is required; set it to \"namespace/name\", such as "
                      "\"shop/chat\""});
  } else if (!isRouteName(r.name)) {
    errors.push_back({at(path, "name"),
                      "must be \"namespace/name\" made of lower-case DNS labels (a-z, 0-9, '-'), "
                      "such as \"shop/chat\", not " +
                          quote(r.name)});
  }
  if (r.header.empty()) {
    errors.push_back({at(path, "header"),
                      "is required; set it to the session key header, such as \"client-id\""});
  } else if (!isHeaderToken(r.header)) {
    errors.push_back({at(path, "header"), notAHeaderName("client-id", r.header)});
  }
  if (r.ttl.count() <= 0) {
    errors.push_back(
        {at(path, "ttl"), "must be a positive duration " + std::string(schema::kDurationHint)});
  }
  if (!schema::kMaxSessionsRange.contains(r.max_sessions)) {
    errors.push_back({at(path, "maxSessions"), schema::kMaxSessionsRange.describe()});
  }
  if (!isPathPrefix(r.match.path_prefix)) {
    errors.push_back({at(path, "match.pathPrefix"),
                      "must be a URL path starting with '/' without spaces, '?' or '#', such as "
                      "\"/\" or \"/api\", not " +
                          quote(r.match.path_prefix)});
  }
  std::set<std::string> hosts;
  for (size_t i = 0; i < r.match.hosts.size(); ++i) {
    std::string hpath = item(path, "match.hosts", i);
    const std::string& h = r.match.hosts[i];
    if (!isHostPattern(h)) {
      errors.push_back({hpath,
                        "must be a DNS name such as \"chat.example.com\" or a wildcard such as "
                        "\"*.example.com\" (no scheme, no port), not " +
                            quote(h)});
    } else if (!hosts.insert(asciiLower(h)).second) {
      errors.push_back({hpath, "duplicate host " + quote(h) + "; list each host once"});
    }
  }
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < r.endpoints.size(); ++i) {
    const EndpointConfig& e = r.endpoints[i];
    std::string epath = item(path, "endpoints", i);
    if (isEndpointName(e.name)) {
      if (auto [it, fresh] = names.emplace(e.name, i); !fresh) {
        errors.push_back({at(epath, "name"), "duplicate endpoint name " + quote(e.name) +
                                                 " (also " + item(path, "endpoints", it->second) +
                                                 "); give each endpoint of a route a unique name"});
      }
    }
    appendEndpoint(e, epath, errors);
  }
}

}  // namespace

bool isHeaderToken(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    if (!ok || c == '\0') return false;
  }
  return true;
}

ConfigErrors validateEndpoint(const EndpointConfig& endpoint, std::string_view path) {
  ConfigErrors errors;
  appendEndpoint(endpoint, std::string(path), errors);
  return errors;
}

ConfigErrors validateRoute(const RouteConfig& route, std::string_view path) {
  ConfigErrors errors;
  appendRoute(route, std::string(path), errors);
  return errors;
}

ConfigErrors validate(const ProxyConfig& config) {
  ConfigErrors errors;
  if (!config.listen.empty() && !isListenAddress(config.listen)) {
    errors.push_back({"listen",
                      "must be \"host:port\" such as \"0.0.0.0:8080\" (every address) or "
                      "\"[::]:8080\", not " +
                          quote(config.listen)});
  }
  validateLimits(config.limits, errors);
  if (config.shared_table.redis) validateRedis(*config.shared_table.redis, errors);
  std::pair<const char*, const std::string*> header_names[] = {
      {"headers.movedFrom", &config.headers.moved_from},
      {"headers.sessionMoved", &config.headers.session_moved},
  };
  for (auto& [path, name] : header_names) {
    if (!isHeaderToken(*name)) {
      errors.push_back({path, notAHeaderName("x-sticky-moved-from", *name)});
    }
  }

  std::map<std::string, size_t> route_names;
  // (host or "" for any host, path prefix) -> route index
  std::map<std::pair<std::string, std::string>, size_t> claims;
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& r = config.routes[i];
    std::string path = "routes[" + std::to_string(i) + "]";
    appendRoute(r, path, errors);
    if (!r.name.empty()) {
      auto [it, fresh] = route_names.emplace(r.name, i);
      if (!fresh) {
        errors.push_back({path + ".name", "duplicate route name " + quote(r.name) +
                                              " (also routes[" + std::to_string(it->second) +
                                              "]); give each route a unique name"});
      }
    }
    std::vector<std::string> hosts;
    if (r.match.hosts.empty()) {
      hosts.push_back("");
    } else {
      for (const std::string& h : r.match.hosts) hosts.push_back(asciiLower(h));
    }
    std::set<size_t> reported;
    for (const std::string& h : hosts) {
      auto [it, fresh] = claims.emplace(std::make_pair(h, r.match.path_prefix), i);
      if (fresh || !reported.insert(it->second).second) continue;
      const RouteConfig& other = config.routes[it->second];
      errors.push_back({path + ".match",
                        "route " + quote(r.name) + " conflicts with route " + quote(other.name) +
                            " (routes[" + std::to_string(it->second) + "]): both match " +
                            (h.empty() ? std::string("any host") : "host " + quote(h)) +
                            " and path prefix " + quote(r.match.path_prefix) +
                            "; give one of them different hosts or a different pathPrefix"});
    }
  }
  return errors;
}

}  // namespace sticky
