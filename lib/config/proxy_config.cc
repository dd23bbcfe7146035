// ProxyConfig: parsing (JSON, or YAML converted to JSON so there is one code path), validation
// and serialization. Every problem is collected with its field path; nothing here throws out of
// the public functions (yaml-cpp and nlohmann exceptions are caught and become ConfigErrors).

#include "config/proxy_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

namespace sticky {
namespace {

using nlohmann::json;

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

// Numeric ranges shared by the reader (type/storage) and validate() (semantics), so both say
// the same thing about the same field.
struct Range {
  uint64_t min;
  uint64_t max;
};
constexpr Range kVersionRange{0, kU64Max};
constexpr Range kPortRange{1, 65535};
constexpr Range kMaxSessionsRange{1, kU64Max};
constexpr Range kMaxHeaderBytesRange{1024, 1024 * 1024};
constexpr Range kMaxHeaderCountRange{1, 10000};
constexpr Range kMaxIdleRange{0, 100000};

std::string rangeMessage(Range r) {
  if (r.max == kU64Max) {
    if (r.min == 0) return "must be a non-negative integer";
    return "must be an integer >= " + std::to_string(r.min);
  }
  return "must be an integer between " + std::to_string(r.min) + " and " + std::to_string(r.max);
}

bool inRange(uint64_t v, Range r) {
  return v >= r.min && v <= r.max;
}

const char* const kHeaderTokenHint =
    "must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)";
const char* const kDurationHint = "such as \"30m\", \"1h30m\", \"10s\" or \"250ms\"";

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string toLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

std::string quote(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string_view typeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number with a fraction";
    default:
      return "an unsupported value";
  }
}

std::string joinNames(std::initializer_list<std::string_view> items) {
  std::string out;
  for (std::string_view s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Syntax checks

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
  std::string h = toLower(host);
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
  return isDnsSubdomain(toLower(h));
}

bool isPathPrefix(std::string_view p) {
  if (p.empty() || p.front() != '/') return false;
  for (char c : p) {
    if (c <= ' ' || c == '?' || c == '#' || c == 0x7f) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Reading JSON into the model

class Reader {
 public:
  ConfigErrors errors;
  std::vector<std::string> bad_paths;  // where reading failed; validate() skips what is under

  void fail(std::string path, std::string message) {
    bad_paths.push_back(path);
    errors.push_back({std::move(path), std::move(message)});
  }

  // Checks that `j` is an object and every field is known.
  bool object(const json& j, const std::string& path, std::initializer_list<std::string_view> known,
              std::string_view example) {
    if (!j.is_object()) {
      fail(path,
           "must be an object (" + std::string(example) + "), not " + std::string(typeName(j)));
      return false;
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        fail(join(path, key),
             "unknown field; check its spelling or remove it (known fields here: " +
                 joinNames(known) + ")");
      }
    }
    return true;
  }

  static std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }

  // The field's value, or nullptr when absent or null (null means "not set", as in Kubernetes).
  static const json* field(const json& obj, std::string_view name) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }

  void missing(const std::string& path, std::string_view hint) {
    fail(path, "is required; set it to " + std::string(hint));
  }

  void readString(const json& v, const std::string& path, std::string& out) {
    if (!v.is_string()) {
      fail(path, "must be a string, not " + std::string(typeName(v)));
      return;
    }
    out = v.get_ref<const std::string&>();
  }

  void readUint(const json& v, const std::string& path, Range range, uint64_t& out) {
    uint64_t value = 0;
    if (v.is_number_unsigned()) {
      value = v.get<uint64_t>();
    } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
      value = static_cast<uint64_t>(v.get<int64_t>());
    } else {
      fail(path, rangeMessage(range) + ", not " +
                     (v.is_number_integer() ? std::string("a negative number")
                                            : std::string(typeName(v))));
      return;
    }
    if (!inRange(value, range)) {
      fail(path, rangeMessage(range) + ", not " + std::to_string(value));
      return;
    }
    out = value;
  }

  template <class T>
  void readUintAs(const json& v, const std::string& path, Range range, T& out) {
    uint64_t value = out;
    readUint(v, path, range, value);
    out = static_cast<T>(value);
  }

  void readDuration(const json& v, const std::string& path, Duration& out) {
    if (!v.is_string()) {
      fail(path, "must be a duration string " + std::string(kDurationHint) + ", not " +
                     std::string(typeName(v)));
      return;
    }
    auto d = parseDuration(v.get_ref<const std::string&>());
    if (!d) {
      fail(path, d.error().message);
      return;
    }
    out = *d;
  }

  template <class E, size_t N>
  void readEnum(const json& v, const std::string& path, const std::array<E, N>& values, E& out) {
    std::string options;
    for (E e : values) {
      if (!options.empty()) options += ", ";
      options += toString(e);
    }
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      for (E e : values) {
        if (s == toString(e)) {
          out = e;
          return;
        }
      }
      fail(path, "must be one of " + options + ", not " + quote(s));
      return;
    }
    fail(path, "must be one of " + options + ", not " + std::string(typeName(v)));
  }

  void readStringList(const json& v, const std::string& path, std::vector<std::string>& out) {
    if (!v.is_array()) {
      fail(path, "must be a list of strings, not " + std::string(typeName(v)));
      return;
    }
    out.clear();
    for (size_t i = 0; i < v.size(); ++i) {
      std::string s;
      const json& item = v[i];
      if (!item.is_string()) {
        fail(path + "[" + std::to_string(i) + "]",
             "must be a string, not " + std::string(typeName(item)));
        continue;
      }
      out.push_back(item.get_ref<const std::string&>());
    }
  }

  void readLimits(const json& j, const std::string& path, Limits& l) {
    if (!object(j, path,
                {"maxHeaderBytes", "maxHeaderCount", "clientHeaderTimeout", "keepAliveIdleTimeout",
                 "upstreamConnectTimeout", "upstreamResponseTimeout", "endpointDownPeriod",
                 "drainTimeout", "upstreamMaxIdlePerEndpoint"},
                "such as {maxHeaderBytes: 32768, upstreamConnectTimeout: 2s}")) {
      return;
    }
    if (auto* v = field(j, "maxHeaderBytes"))
      readUintAs(*v, join(path, "maxHeaderBytes"), kMaxHeaderBytesRange, l.max_header_bytes);
    if (auto* v = field(j, "maxHeaderCount"))
      readUintAs(*v, join(path, "maxHeaderCount"), kMaxHeaderCountRange, l.max_header_count);
    if (auto* v = field(j, "upstreamMaxIdlePerEndpoint"))
      readUintAs(*v, join(path, "upstreamMaxIdlePerEndpoint"), kMaxIdleRange,
                 l.upstream_max_idle_per_endpoint);
    std::pair<const char*, Duration*> durations[] = {
        {"clientHeaderTimeout", &l.client_header_timeout},
        {"keepAliveIdleTimeout", &l.keep_alive_idle_timeout},
        {"upstreamConnectTimeout", &l.upstream_connect_timeout},
        {"upstreamResponseTimeout", &l.upstream_response_timeout},
        {"endpointDownPeriod", &l.endpoint_down_period},
        {"drainTimeout", &l.drain_timeout},
    };
    for (auto& [name, out] : durations) {
      if (auto* v = field(j, name)) readDuration(*v, join(path, name), *out);
    }
  }

  void readHeaders(const json& j, const std::string& path, HeaderNames& h) {
    if (!object(j, path, {"movedFrom", "sessionMoved"},
                "such as {movedFrom: x-sticky-moved-from, sessionMoved: x-sticky-session-moved}")) {
      return;
    }
    if (auto* v = field(j, "movedFrom")) readString(*v, join(path, "movedFrom"), h.moved_from);
    if (auto* v = field(j, "sessionMoved"))
      readString(*v, join(path, "sessionMoved"), h.session_moved);
  }

  void readEndpoint(const json& j, const std::string& path, EndpointConfig& e) {
    if (!object(j, path, {"name", "address", "port", "state"},
                "such as {name: chat-0, address: 10.0.0.5, port: 8080}")) {
      return;
    }
    if (auto* v = field(j, "name")) {
      readString(*v, join(path, "name"), e.name);
    } else {
      missing(join(path, "name"), "the endpoint's name, such as the pod name \"chat-0\"");
    }
    if (auto* v = field(j, "address")) {
      readString(*v, join(path, "address"), e.address);
    } else {
      missing(join(path, "address"), "the endpoint's IP address, such as \"10.0.0.5\"");
    }
    if (auto* v = field(j, "port")) {
      readUintAs(*v, join(path, "port"), kPortRange, e.port);
    } else {
      missing(join(path, "port"), "the endpoint's port, such as 8080");
    }
    if (auto* v = field(j, "state")) {
      readEnum(*v, join(path, "state"), std::array{EndpointState::Active, EndpointState::Draining},
               e.state);
    }
  }

  void readMatch(const json& j, const std::string& path, RouteMatch& m) {
    if (!object(j, path, {"hosts", "pathPrefix"},
                "such as {hosts: [chat.example.com], pathPrefix: /}")) {
      return;
    }
    if (auto* v = field(j, "hosts")) readStringList(*v, join(path, "hosts"), m.hosts);
    if (auto* v = field(j, "pathPrefix")) readString(*v, join(path, "pathPrefix"), m.path_prefix);
  }

  void readRoute(const json& j, const std::string& path, RouteConfig& r) {
    if (!object(j, path,
                {"name", "match", "header", "ttl", "maxSessions", "placement", "onMissingKey",
                 "onEndpointLost", "endpoints"},
                "such as {name: shop/chat, header: client-id, endpoints: [...]}")) {
      return;
    }
    if (auto* v = field(j, "name")) {
      readString(*v, join(path, "name"), r.name);
    } else {
      missing(join(path, "name"), "\"namespace/name\", such as \"shop/chat\"");
    }
    if (auto* v = field(j, "match")) readMatch(*v, join(path, "match"), r.match);
    if (auto* v = field(j, "header")) {
      readString(*v, join(path, "header"), r.header);
    } else {
      missing(join(path, "header"), "the session key header, such as \"client-id\"");
    }
    if (auto* v = field(j, "ttl")) readDuration(*v, join(path, "ttl"), r.ttl);
    if (auto* v = field(j, "maxSessions"))
      readUint(*v, join(path, "maxSessions"), kMaxSessionsRange, r.max_sessions);
    if (auto* v = field(j, "placement")) {
      readEnum(
          *v, join(path, "placement"),
          std::array{Placement::LeastSessions, Placement::ConsistentHash, Placement::RoundRobin},
          r.placement);
    }
    if (auto* v = field(j, "onMissingKey")) {
      readEnum(*v, join(path, "onMissingKey"),
               std::array{OnMissingKey::Balance, OnMissingKey::Reject}, r.on_missing_key);
    }
    if (auto* v = field(j, "onEndpointLost")) {
      readEnum(*v, join(path, "onEndpointLost"),
               std::array{OnEndpointLost::Reassign, OnEndpointLost::Reject}, r.on_endpoint_lost);
    }
    if (auto* v = field(j, "endpoints")) {
      std::string epath = join(path, "endpoints");
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
    object(j, "", {"version", "listen", "limits", "headers", "routes"}, "");
    if (auto* v = field(j, "version")) readUint(*v, "version", kVersionRange, c.version);
    if (auto* v = field(j, "listen")) readString(*v, "listen", c.listen);
    if (auto* v = field(j, "limits")) readLimits(*v, "limits", c.limits);
    if (auto* v = field(j, "headers")) readHeaders(*v, "headers", c.headers);
    if (auto* v = field(j, "routes")) {
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

  // True if `path` is at or under a path whose reading failed (validate() would only repeat it).
  bool covered(const std::string& path) const {
    for (const std::string& bad : bad_paths) {
      if (bad.empty()) return true;
      if (path.size() >= bad.size() && path.compare(0, bad.size(), bad) == 0 &&
          (path.size() == bad.size() || path[bad.size()] == '.' || path[bad.size()] == '[')) {
        return true;
      }
    }
    return false;
  }
};

// ---------------------------------------------------------------------------------------------
// Parsing text

// Tracks JSON object keys while nlohmann parses, so a duplicated field is an error rather than
// silently overwritten.
class DuplicateKeyTracker {
 public:
  ConfigErrors errors;

  bool onEvent(json::parse_event_t event, const json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        enterValue();
        frames_.push_back({event == json::parse_event_t::array_start, -1, {}, {}});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
      case json::parse_event_t::key:
        if (!frames_.empty() && parsed.is_string()) {
          Frame& top = frames_.back();
          top.key = parsed.get<std::string>();
          if (!top.keys.insert(top.key).second) {
            errors.push_back({path(), "duplicate field; set it once"});
          }
        }
        break;
      case json::parse_event_t::value:
        enterValue();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool array;
    long index;
    std::string key;
    std::set<std::string> keys;
  };

  void enterValue() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }

  std::string path() const {
    std::string out;
    for (const Frame& f : frames_) {
      if (f.array) {
        out += "[" + std::to_string(f.index) + "]";
      } else {
        if (!out.empty()) out += ".";
        out += f.key;
      }
    }
    return out;
  }

  std::vector<Frame> frames_;
};

Result<json, ConfigErrors> parseJsonText(std::string_view text) {
  DuplicateKeyTracker tracker;
  try {
    json j = json::parse(
        text.begin(), text.end(),
        [&tracker](int, json::parse_event_t event, json& parsed) {
          return tracker.onEvent(event, parsed);
        },
        /*allow_exceptions=*/true);
    if (!tracker.errors.empty()) return unexpected(std::move(tracker.errors));
    return j;
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; keep its line and column.
    if (size_t close = what.find("] "); what.starts_with("[json.exception") && close != what.npos) {
      what = what.substr(close + 2);
    }
    return unexpected(
        ConfigErrors{{"", "invalid JSON: " + what + "; fix the syntax at that position"}});
  } catch (const json::exception& e) {
    return unexpected(ConfigErrors{{"", std::string("invalid JSON: ") + e.what()}});
  }
}

// YAML 1.2 core schema resolution of a plain (unquoted) scalar.
json yamlPlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(b + 2, e, v, s[1] == 'x' ? 16 : 8);
    if (ec == std::errc() && p == e) return v;
    return s;
  }
  {
    const char* digits = (s[0] == '+' || s[0] == '-') ? b + 1 : b;
    bool all_digits =
        digits < e && std::all_of(digits, e, [](char c) { return c >= '0' && c <= '9'; });
    if (all_digits) {
      if (s[0] == '-') {
        int64_t v = 0;
        auto [p, ec] = std::from_chars(b, e, v);
        if (ec == std::errc() && p == e) return v;
      } else {
        uint64_t v = 0;
        auto [p, ec] = std::from_chars(digits, e, v);
        if (ec == std::errc() && p == e) return v;
      }
      return s;  // out of range: left as a string, so the field reports a type error
    }
  }
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf" || s == "-.inf" || s == ".nan" ||
      s == ".NaN" || s == ".NAN") {
    return s;  // not representable in JSON; no field of ours takes a float anyway
  }
  // Floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
  {
    size_t i = 0;
    if (s[i] == '+' || s[i] == '-') ++i;
    size_t int_digits = 0, frac_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++int_digits;
    bool dot = i < s.size() && s[i] == '.';
    if (dot) {
      ++i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++frac_digits;
    }
    bool ok = int_digits > 0 || frac_digits > 0;
    if (ok && i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      ++i;
      if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
      size_t exp_digits = 0;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp_digits;
      ok = exp_digits > 0;
    }
    if (ok && i == s.size()) {
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (end == s.c_str() + s.size() && std::isfinite(d)) return d;
    }
  }
  return s;
}

std::string yamlWhere(const YAML::Mark& mark) {
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
}

// Converts a YAML tree to JSON. Errors (duplicate or non-scalar keys) carry the line.
json yamlToJson(const YAML::Node& node, const std::string& path, ConfigErrors& errors) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      const std::string& s = node.Scalar();
      if (tag == "!" || tag == "tag:yaml.org,2002:str") return s;  // quoted or !!str
      return yamlPlainScalar(s);
    }
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      size_t i = 0;
      for (const auto& entry : node) {
        const YAML::Node item = entry;
        arr.push_back(yamlToJson(item, path + "[" + std::to_string(i) + "]", errors));
        ++i;
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& entry : node) {
        // Copies: the iterator's pair is a temporary, references into it would dangle.
        const YAML::Node k = entry.first;
        const YAML::Node v = entry.second;
        if (!k.IsScalar()) {
          errors.push_back({path, "a field name must be a plain string (at " + yamlWhere(k.Mark()) +
                                      "); fix the YAML there"});
          continue;
        }
        const std::string key = k.Scalar();
        std::string child = path.empty() ? key : path + "." + key;
        if (obj.contains(key)) {
          errors.push_back(
              {child, "duplicate field (at " + yamlWhere(k.Mark()) + "); set it once"});
          continue;
        }
        obj[key] = yamlToJson(v, child, errors);
      }
      return obj;
    }
  }
  return nullptr;
}

Result<json, ConfigErrors> parseYamlText(std::string_view text) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    ConfigErrors errors;
    json j = yamlToJson(root, "", errors);
    if (!errors.empty()) return unexpected(std::move(errors));
    return j;
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.is_null() ? std::string() : " at " + yamlWhere(e.mark);
    return unexpected(
        ConfigErrors{{"", "invalid YAML" + where + ": " + e.msg + "; fix the syntax there"}});
  }
}

// ---------------------------------------------------------------------------------------------
// Validation

void validateLimits(const Limits& l, ConfigErrors& errors) {
  if (!inRange(l.max_header_bytes, kMaxHeaderBytesRange))
    errors.push_back({"limits.maxHeaderBytes", rangeMessage(kMaxHeaderBytesRange)});
  if (!inRange(l.max_header_count, kMaxHeaderCountRange))
    errors.push_back({"limits.maxHeaderCount", rangeMessage(kMaxHeaderCountRange)});
  if (!inRange(l.upstream_max_idle_per_endpoint, kMaxIdleRange))
    errors.push_back({"limits.upstreamMaxIdlePerEndpoint", rangeMessage(kMaxIdleRange)});
  std::pair<const char*, Duration> durations[] = {
      {"clientHeaderTimeout", l.client_header_timeout},
      {"keepAliveIdleTimeout", l.keep_alive_idle_timeout},
      {"upstreamConnectTimeout", l.upstream_connect_timeout},
      {"upstreamResponseTimeout", l.upstream_response_timeout},
      {"endpointDownPeriod", l.endpoint_down_period},
      {"drainTimeout", l.drain_timeout},
  };
  for (auto& [name, d] : durations) {
    if (d.count() <= 0) {
      errors.push_back({std::string("limits.") + name,
                        "must be a positive duration " + std::string(kDurationHint)});
    }
  }
}

void validateRoute(const RouteConfig& r, const std::string& path, ConfigErrors& errors) {
  if (r.name.empty()) {
    errors.push_back({path + ".name",
                      "is required; set it to \"namespace/name\", such as "
                      "\"shop/chat\""});
  } else if (!isRouteName(r.name)) {
    errors.push_back({path + ".name",
                      "must be \"namespace/name\" made of lower-case DNS labels (a-z, 0-9, '-'), "
                      "such as \"shop/chat\", not " +
                          quote(r.name)});
  }
  if (r.header.empty()) {
    errors.push_back(
        {path + ".header", "is required; set it to the session key header, such as \"client-id\""});
  } else if (!isHeaderToken(r.header)) {
    errors.push_back({path + ".header", std::string(kHeaderTokenHint) +
                                            ", such as \"client-id\", not " + quote(r.header)});
  }
  if (r.ttl.count() <= 0) {
    errors.push_back({path + ".ttl", "must be a positive duration " + std::string(kDurationHint)});
  }
  if (!inRange(r.max_sessions, kMaxSessionsRange)) {
    errors.push_back({path + ".maxSessions", rangeMessage(kMaxSessionsRange)});
  }
  if (!isPathPrefix(r.match.path_prefix)) {
    errors.push_back({path + ".match.pathPrefix",
                      "must be a URL path starting with '/' without spaces, '?' or '#', such as "
                      "\"/\" or \"/api\", not " +
                          quote(r.match.path_prefix)});
  }
  std::set<std::string> hosts;
  for (size_t i = 0; i < r.match.hosts.size(); ++i) {
    std::string hpath = path + ".match.hosts[" + std::to_string(i) + "]";
    const std::string& h = r.match.hosts[i];
    if (!isHostPattern(h)) {
      errors.push_back({hpath,
                        "must be a DNS name such as \"chat.example.com\" or a wildcard such as "
                        "\"*.example.com\" (no scheme, no port), not " +
                            quote(h)});
    } else if (!hosts.insert(toLower(h)).second) {
      errors.push_back({hpath, "duplicate host " + quote(h) + "; list each host once"});
    }
  }
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < r.endpoints.size(); ++i) {
    const EndpointConfig& e = r.endpoints[i];
    std::string epath = path + ".endpoints[" + std::to_string(i) + "]";
    if (e.name.empty()) {
      errors.push_back({epath + ".name",
                        "is required; set it to the endpoint's name, such as the pod name "
                        "\"chat-0\""});
    } else if (!isEndpointName(e.name)) {
      errors.push_back({epath + ".name",
                        "must be 1-253 letters, digits, '.', '-' or '_' (it is sent in a header), "
                        "such as \"chat-0\", not " +
                            quote(e.name)});
    } else if (auto [it, fresh] = names.emplace(e.name, i); !fresh) {
      errors.push_back({epath + ".name", "duplicate endpoint name " + quote(e.name) + " (also " +
                                             path + ".endpoints[" + std::to_string(it->second) +
                                             "]); give each endpoint of a route a unique name"});
    }
    if (e.address.empty()) {
      errors.push_back({epath + ".address",
                        "is required; set it to the endpoint's IP address, such as \"10.0.0.5\""});
    } else if (!isIpLiteral(e.address)) {
      errors.push_back({epath + ".address",
                        "must be an IPv4 or IPv6 address such as \"10.0.0.5\" or \"fd00::5\" (not "
                        "a host name), not " +
                            quote(e.address)});
    }
    if (!inRange(e.port, kPortRange)) {
      errors.push_back({epath + ".port", rangeMessage(kPortRange)});
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API

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

std::string ConfigError::toString() const {
  if (path.empty()) return message;
  return path + ": " + message;
}

bool isHeaderToken(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    if (!ok || c == '\0') return false;
  }
  return true;
}

void normalize(ProxyConfig& config) {
  config.headers.moved_from = toLower(config.headers.moved_from);
  config.headers.session_moved = toLower(config.headers.session_moved);
  for (RouteConfig& r : config.routes) {
    r.header = toLower(r.header);
    for (std::string& h : r.match.hosts) h = toLower(h);
  }
}

Result<Duration> parseDuration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return fail("must be a duration " + std::string(kDurationHint) + ", not " + quote(text) + " (" +
                std::string(why) + ")");
  };
  if (text.empty()) return bad("empty");
  if (text == "0") return Duration(0);
  constexpr uint64_t kMaxMs = uint64_t{1} << 52;  // ~142,000 years; keeps the arithmetic exact
  uint64_t total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    uint64_t whole = 0;
    size_t whole_digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (whole > kMaxMs) return bad("too large");
      whole = whole * 10 + static_cast<uint64_t>(text[i] - '0');
      ++i;
      ++whole_digits;
    }
    uint64_t frac = 0, frac_scale = 1;
    size_t frac_digits = 0;
    if (i < text.size() && text[i] == '.') {
      ++i;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        if (frac_digits < 9) {
          frac = frac * 10 + static_cast<uint64_t>(text[i] - '0');
          frac_scale *= 10;
        } else if (text[i] != '0') {
          return bad("finer than a millisecond");
        }
        ++i;
        ++frac_digits;
      }
      if (frac_digits == 0) return bad("a '.' must be followed by digits");
    }
    if (whole_digits == 0 && frac_digits == 0) return bad("expected a number before each unit");
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    uint64_t unit_ms = 0;
    if (unit == "ms") {
      unit_ms = 1;
    } else if (unit == "s") {
      unit_ms = 1000;
    } else if (unit == "m") {
      unit_ms = 60 * 1000;
    } else if (unit == "h") {
      unit_ms = 3600 * 1000;
    } else if (unit.empty()) {
      return bad("missing unit; use ms, s, m or h");
    } else {
      return bad("unknown unit " + quote(unit) + "; use ms, s, m or h");
    }
    if (whole > kMaxMs / unit_ms) return bad("too large");
    uint64_t part = whole * unit_ms;
    if (frac != 0) {
      uint64_t scaled = frac * unit_ms;  // frac < 1e9, unit_ms <= 3.6e6: fits in 64 bits
      if (scaled % frac_scale != 0) return bad("finer than a millisecond");
      part += scaled / frac_scale;
    }
    total_ms += part;
    if (total_ms > kMaxMs) return bad("too large");
  }
  return Duration(static_cast<int64_t>(total_ms));
}

std::string formatDuration(Duration d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  int64_t h = ms / 3600000;
  ms %= 3600000;
  int64_t m = ms / 60000;
  ms %= 60000;
  int64_t s = ms / 1000;
  ms %= 1000;
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (s) out += std::to_string(s) + "s";
  if (ms) out += std::to_string(ms) + "ms";
  return out;
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
  std::pair<const char*, const std::string*> header_names[] = {
      {"headers.movedFrom", &config.headers.moved_from},
      {"headers.sessionMoved", &config.headers.session_moved},
  };
  for (auto& [path, name] : header_names) {
    if (!isHeaderToken(*name)) {
      errors.push_back({path, std::string(kHeaderTokenHint) +
                                  ", such as \"x-sticky-moved-from\", "
                                  "not " +
                                  quote(*name)});
    }
  }

  std::map<std::string, size_t> route_names;
  // (host or "" for any host, path prefix) -> route index
  std::map<std::pair<std::string, std::string>, size_t> claims;
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& r = config.routes[i];
    std::string path = "routes[" + std::to_string(i) + "]";
    validateRoute(r, path, errors);
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
      for (const std::string& h : r.match.hosts) hosts.push_back(toLower(h));
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

Result<ProxyConfig, ConfigErrors> proxyConfigFromJson(const nlohmann::json& j) {
  Reader reader;
  ProxyConfig config;
  try {
    reader.readConfig(j, config);
  } catch (const std::exception& e) {
    // Reading checks every type first; this is a safety net, not a path we expect.
    reader.fail("", std::string("could not read the config: ") + e.what());
  }
  normalize(config);
  ConfigErrors errors = std::move(reader.errors);
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
  return {
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
       }},
      {"headers",
       {{"movedFrom", config.headers.moved_from}, {"sessionMoved", config.headers.session_moved}}},
      {"routes", std::move(routes)},
  };
}

std::string toJsonString(const ProxyConfig& config, int indent) {
  return toJson(config).dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace sticky
