#include "config/proxy_config.h"

#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/process.h"

namespace sticky {
namespace {

using namespace std::chrono_literals;

const char* const kFullYaml = R"(
version: 7
listen: "0.0.0.0:8080"
limits:
  maxHeaderBytes: 16384
  maxHeaderCount: 50
  clientHeaderTimeout: 5s
  keepAliveIdleTimeout: 2m
  upstreamConnectTimeout: 500ms
  upstreamResponseTimeout: 1m30s
  endpointDownPeriod: 15s
  drainTimeout: 20s
  upstreamMaxIdlePerEndpoint: 8
  maxConnections: 500
  clientBodyTimeout: 7s
  clientSendTimeout: 8s
  upstreamReadTimeout: 9s
  tunnelIdleTimeout: 2h
headers:
  movedFrom: X-Moved-From
  sessionMoved: x-session-moved
routes:
  - name: shop/chat
    match:
      hosts: [Chat.Example.com, "*.chat.example.com"]
      pathPrefix: /api
    header: Client-ID
    ttl: 1h30m
    maxSessions: 5000
    placement: ConsistentHash
    onMissingKey: Reject
    onEndpointLost: Reject
    endpoints:
      - {name: chat-0, address: 10.0.0.5, port: 8080}
      - name: chat-1
        address: "fd00::6"
        port: 8081
        state: Draining
  - name: shop/cart
    header: session
    endpoints: []
)";

const char* const kFullJson = R"(  {
  "version": 7, "listen": "0.0.0.0:8080",
  "limits": {"maxHeaderBytes": 16384, "maxHeaderCount": 50, "clientHeaderTimeout": "5s",
             "keepAliveIdleTimeout": "2m", "upstreamConnectTimeout": "500ms",
             "upstreamResponseTimeout": "1m30s", "endpointDownPeriod": "15s",
             "drainTimeout": "20s", "upstreamMaxIdlePerEndpoint": 8, "maxConnections": 500,
             "clientBodyTimeout": "7s", "clientSendTimeout": "8s", "upstreamReadTimeout": "9s",
             "tunnelIdleTimeout": "2h"},
  "headers": {"movedFrom": "X-Moved-From", "sessionMoved": "x-session-moved"},
  "routes": [
    {"name": "shop/chat",
     "match": {"hosts": ["Chat.Example.com", "*.chat.example.com"], "pathPrefix": "/api"},
     "header": "Client-ID", "ttl": "1h30m", "maxSessions": 5000,
     "placement": "ConsistentHash", "onMissingKey": "Reject", "onEndpointLost": "Reject",
     "endpoints": [{"name": "chat-0", "address": "10.0.0.5", "port": 8080},
                   {"name": "chat-1", "address": "fd00::6", "port": 8081, "state": "Draining"}]},
    {"name": "shop/cart", "header": "session", "endpoints": []}
  ]
})";

ProxyConfig parseOk(std::string_view text, ConfigFormat format = ConfigFormat::Auto) {
  auto r = parseProxyConfig(text, format);
  if (!r) {
    for (const auto& e : r.error()) MESSAGE(e.toString());
  }
  REQUIRE(r.ok());
  return *r;
}

ConfigErrors parseErrors(std::string_view text, ConfigFormat format = ConfigFormat::Auto) {
  auto r = parseProxyConfig(text, format);
  REQUIRE_FALSE(r.ok());
  return r.error();
}

std::string dump(const ConfigErrors& errors) {
  std::string out;
  for (const auto& e : errors) out += e.toString() + "\n";
  return out;
}

// Note: CHECK((a == b)) for our enums: doctest would stringify them with our ADL toString,
// which returns string_view, and fail to compile.

// True if some error has exactly `path` and a message containing `text`.
bool hasError(const ConfigErrors& errors, std::string_view path, std::string_view text) {
  for (const auto& e : errors) {
    if (e.path == path && e.message.find(text) != std::string::npos) return true;
  }
  return false;
}

#define CHECK_ERROR(errors, path, text)                                                           \
  CHECK_MESSAGE(hasError(errors, path, text), "want " << path << ": ..." << text << "...\ngot:\n" \
                                                      << dump(errors))

// A minimal valid route as YAML, to embed one field change at a time.
std::string routeYaml(std::string_view extra_route_fields,
                      std::string_view endpoint_fields = "name: e0, address: 10.0.0.1, port: 80") {
  return "routes:\n  - name: ns/r\n    header: k\n" + std::string(extra_route_fields) +
         "    endpoints:\n      - {" + std::string(endpoint_fields) + "}\n";
}

TEST_CASE("a config version is spelled as 16 lowercase hex digits") {
  CHECK(configVersionHex(0) == "0000000000000000");
  CHECK(configVersionHex(0x2a) == "000000000000002a");
  CHECK(configVersionHex(0xfedcba9876543211) == "fedcba9876543211");
  CHECK(configVersionHex(~uint64_t{0}) == "ffffffffffffffff");
}

TEST_CASE("a full YAML config is read into the model, normalized") {
  ProxyConfig c = parseOk(kFullYaml);
  CHECK(c.version == 7);
  CHECK(c.listen == "0.0.0.0:8080");
  CHECK(c.limits.max_header_bytes == 16384);
  CHECK(c.limits.max_header_count == 50);
  CHECK(c.limits.client_header_timeout == 5s);
  CHECK(c.limits.keep_alive_idle_timeout == 2min);
  CHECK(c.limits.upstream_connect_timeout == 500ms);
  CHECK(c.limits.upstream_response_timeout == 90s);
  CHECK(c.limits.endpoint_down_period == 15s);
  CHECK(c.limits.drain_timeout == 20s);
  CHECK(c.limits.upstream_max_idle_per_endpoint == 8);
  CHECK(c.limits.max_connections == 500);
  CHECK(c.limits.client_body_timeout == 7s);
  CHECK(c.limits.client_send_timeout == 8s);
  CHECK(c.limits.upstream_read_timeout == 9s);
  CHECK(c.limits.tunnel_idle_timeout == 2h);
  CHECK(c.headers.moved_from == "x-moved-from");  // header names are stored lower-case
  CHECK(c.headers.session_moved == "x-session-moved");
  REQUIRE(c.routes.size() == 2);
  const RouteConfig& r = c.routes[0];
  CHECK(r.name == "shop/chat");
  CHECK(r.match.hosts == std::vector<std::string>{"chat.example.com", "*.chat.example.com"});
  CHECK(r.match.path_prefix == "/api");
  CHECK(r.header == "client-id");
  CHECK(r.ttl == 90min);
  CHECK(r.max_sessions == 5000);
  CHECK((r.placement == Placement::ConsistentHash));
  CHECK((r.on_missing_key == OnMissingKey::Reject));
  CHECK((r.on_endpoint_lost == OnEndpointLost::Reject));
  REQUIRE(r.endpoints.size() == 2);
  CHECK(r.endpoints[0] == EndpointConfig{"chat-0", "10.0.0.5", 8080, EndpointState::Active});
  CHECK(r.endpoints[1] == EndpointConfig{"chat-1", "fd00::6", 8081, EndpointState::Draining});
  CHECK(c.routes[1].endpoints.empty());
}

TEST_CASE("JSON and YAML of the same config give the same model - Auto picks by first char") {
  ProxyConfig from_yaml = parseOk(kFullYaml);
  ProxyConfig from_json = parseOk(kFullJson);  // leading spaces, then '{': JSON
  CHECK(from_json == from_yaml);
  CHECK(parseOk(kFullJson, ConfigFormat::Json) == from_yaml);
  CHECK(parseOk(kFullYaml, ConfigFormat::Yaml) == from_yaml);
  // JSON is YAML too, so forcing YAML on a JSON text works as well.
  CHECK(parseOk(kFullJson, ConfigFormat::Yaml) == from_yaml);
}

TEST_CASE("omitted fields take their documented defaults") {
  ProxyConfig c = parseOk("routes:\n  - {name: ns/r, header: k}\n");
  ProxyConfig defaults;
  CHECK(c.version == 0);
  CHECK(c.listen.empty());
  CHECK(c.limits == Limits{});
  CHECK(c.headers == HeaderNames{});
  CHECK(c.headers.moved_from == "x-sticky-moved-from");
  REQUIRE(c.routes.size() == 1);
  const RouteConfig& r = c.routes[0];
  CHECK(r.match.hosts.empty());
  CHECK(r.match.path_prefix == "/");
  CHECK(r.ttl == 30min);
  CHECK(r.max_sessions == 100000);
  CHECK((r.placement == Placement::LeastSessions));
  CHECK((r.on_missing_key == OnMissingKey::Balance));
  CHECK((r.on_endpoint_lost == OnEndpointLost::Reassign));
  CHECK(r.endpoints.empty());
  CHECK(parseOk("{}").routes.empty());
  CHECK(parseOk("routes: []").routes.empty());
  // null means "not set", as in Kubernetes objects.
  CHECK(parseOk("routes:\n  - {name: ns/r, header: k, ttl: null, match: ~}\n").routes[0].ttl ==
        30min);
  // Endpoint state defaults to Active.
  CHECK((parseOk(routeYaml("")).routes[0].endpoints[0].state == EndpointState::Active));
}

TEST_CASE("unknown fields are errors naming the field and the known ones") {
  auto errors = parseErrors(routeYaml("    hedaer: x\n"));
  CHECK_ERROR(errors, "routes[0].hedaer", "unknown field; check its spelling or remove it");
  CHECK_ERROR(errors, "routes[0].hedaer", "header");
  CHECK_ERROR(parseErrors("verison: 1\n"), "verison", "unknown field");
  CHECK_ERROR(parseErrors("limits: {maxHeaderByte: 2048}\n"), "limits.maxHeaderByte",
              "known fields here: maxHeaderBytes");
  CHECK_ERROR(parseErrors(routeYaml("", "name: e0, address: 10.0.0.1, port: 80, weight: 3")),
              "routes[0].endpoints[0].weight", "unknown field");
  CHECK_ERROR(parseErrors(routeYaml("    match: {host: [a.b]}\n")), "routes[0].match.host",
              "unknown field");
  CHECK_ERROR(parseErrors("headers: {movedfrom: x}\n"), "headers.movedfrom", "unknown field");
}

TEST_CASE("wrong types are errors with the expected type") {
  CHECK_ERROR(parseErrors(routeYaml("", "name: e0, address: 10.0.0.1, port: \"80\"")),
              "routes[0].endpoints[0].port",
              "must be an integer between 1 and 65535, not a string");
  CHECK_ERROR(parseErrors(routeYaml("", "name: e0, address: 10.0.0.1, port: 80.5")),
              "routes[0].endpoints[0].port", "must be an integer between 1 and 65535");
  CHECK_ERROR(parseErrors(routeYaml("    ttl: 30\n")), "routes[0].ttl",
              "must be a duration string such as \"30m\"");
  CHECK_ERROR(parseErrors("routes:\n  - {name: ns/r, header: 42}\n"), "routes[0].header",
              "must be a string, not an integer");
  CHECK_ERROR(parseErrors("routes:\n  - {name: ns/r, header: [a]}\n"), "routes[0].header",
              "must be a string, not a list");
  CHECK_ERROR(parseErrors("routes: {name: ns/r}\n"), "routes", "must be a list of routes");
  CHECK_ERROR(parseErrors("routes: [5]\n"), "routes[0]", "must be an object");
  CHECK_ERROR(parseErrors("version: -3\n"), "version", "must be a non-negative integer");
  CHECK_ERROR(parseErrors("version: \"7\"\n"), "version", "must be a non-negative integer");
  CHECK_ERROR(parseErrors("listen: 8080\n"), "listen", "must be a string, not an integer");
  CHECK_ERROR(parseErrors("routes:\n  - {name: ns/r, header: k, match: {hosts: a.b}}\n"),
              "routes[0].match.hosts", "must be a list of strings");
  CHECK_ERROR(parseErrors("routes:\n  - {name: ns/r, header: k, match: {hosts: [a.b, 7]}}\n"),
              "routes[0].match.hosts[1]", "must be a string");
  CHECK_ERROR(parseErrors("routes:\n  - {name: ns/r, header: k, endpoints: {a: 1}}\n"),
              "routes[0].endpoints", "must be a list of endpoints");
  CHECK_ERROR(parseErrors("limits: {maxHeaderCount: true}\n"), "limits.maxHeaderCount",
              "must be an integer between 1 and 10000, not a boolean");
  CHECK_ERROR(parseErrors("[1, 2]"), "", "the config must be an object");
  CHECK_ERROR(parseErrors("just a string"), "", "the config must be an object");
}

TEST_CASE("enums list their allowed values") {
  CHECK_ERROR(parseErrors(routeYaml("    placement: Random\n")), "routes[0].placement",
              "must be one of LeastSessions, ConsistentHash, RoundRobin, not \"Random\"");
  CHECK_ERROR(parseErrors(routeYaml("    onMissingKey: balance\n")), "routes[0].onMissingKey",
              "must be one of Balance, Reject");
  CHECK_ERROR(parseErrors(routeYaml("    onEndpointLost: 1\n")), "routes[0].onEndpointLost",
              "must be one of Reassign, Reject, not an integer");
  CHECK_ERROR(parseErrors(routeYaml("", "name: e0, address: 10.0.0.1, port: 80, state: Gone")),
              "routes[0].endpoints[0].state", "must be one of Active, Draining");
}

TEST_CASE("required fields say what to set") {
  auto errors = parseErrors("routes:\n  - endpoints: [{}]\n");
  CHECK_ERROR(errors, "routes[0].name", "is required; set it to \"namespace/name\"");
  CHECK_ERROR(errors, "routes[0].header", "is required; set it to the session key header");
  CHECK_ERROR(errors, "routes[0].endpoints[0].name", "is required");
  CHECK_ERROR(errors, "routes[0].endpoints[0].address", "is required");
  CHECK_ERROR(errors, "routes[0].endpoints[0].port", "is required");
  // Reported once, not again by validation.
  CHECK(errors.size() == 5);
}

TEST_CASE("route fields are validated") {
  CHECK_ERROR(parseErrors("routes:\n  - {name: chat, header: k}\n"), "routes[0].name",
              "must be \"namespace/name\" made of lower-case DNS labels");
  CHECK_ERROR(parseErrors("routes:\n  - {name: Shop/Chat, header: k}\n"), "routes[0].name",
              "not \"Shop/Chat\"");
  CHECK_ERROR(parseErrors("routes:\n  - {name: shop/-chat, header: k}\n"), "routes[0].name",
              "lower-case DNS labels");
  CHECK(parseOk("routes:\n  - {name: shop/chat.v2, header: k}\n").routes.size() == 1);
  CHECK_ERROR(parseErrors("routes:\n  - {name: ns/r, header: \"client id\"}\n"), "routes[0].header",
              "must be an HTTP header name");
  CHECK_ERROR(parseErrors("routes:\n  - {name: ns/r, header: \"\"}\n"), "routes[0].header",
              "is required");
  CHECK_ERROR(parseErrors(routeYaml("    ttl: 0s\n")), "routes[0].ttl",
              "must be a positive duration");
  CHECK_ERROR(parseErrors(routeYaml("    ttl: 30x\n")), "routes[0].ttl",
              "must be a duration such as \"30m\", \"1h30m\", \"10s\" or \"250ms\", not \"30x\" "
              "(unknown unit \"x\"; use ms, s, m or h)");
  CHECK_ERROR(parseErrors(routeYaml("    maxSessions: 0\n")), "routes[0].maxSessions",
              "must be an integer >= 1");
  CHECK_ERROR(parseErrors(routeYaml("    match: {pathPrefix: api}\n")),
              "routes[0].match.pathPrefix", "must be a URL path starting with '/'");
  CHECK_ERROR(parseErrors(routeYaml("    match: {pathPrefix: \"/a b\"}\n")),
              "routes[0].match.pathPrefix", "without spaces");
  CHECK_ERROR(parseErrors(routeYaml("    match: {hosts: [\"chat.example.com:8080\"]}\n")),
              "routes[0].match.hosts[0]", "must be a DNS name");
  CHECK_ERROR(parseErrors(routeYaml("    match: {hosts: [\"http://a.b\"]}\n")),
              "routes[0].match.hosts[0]", "no scheme, no port");
  CHECK_ERROR(parseErrors(routeYaml("    match: {hosts: [\"*\"]}\n")), "routes[0].match.hosts[0]",
              "wildcard such as \"*.example.com\"");
  CHECK_ERROR(parseErrors(routeYaml("    match: {hosts: [a.b, A.B]}\n")),
              "routes[0].match.hosts[1]", "duplicate host");
  CHECK(parseOk(routeYaml("    match: {hosts: [\"*.Example.COM\", localhost]}\n"))
            .routes[0]
            .match.hosts == std::vector<std::string>{"*.example.com", "localhost"});
}

TEST_CASE("endpoint fields are validated") {
  CHECK_ERROR(parseErrors(routeYaml("", "name: e0, address: 10.0.0.1, port: 0")),
              "routes[0].endpoints[0].port", "must be an integer between 1 and 65535, not 0");
  CHECK_ERROR(parseErrors(routeYaml("", "name: e0, address: 10.0.0.1, port: 70000")),
              "routes[0].endpoints[0].port", "must be an integer between 1 and 65535, not 70000");
  CHECK_ERROR(parseErrors(routeYaml("", "name: e0, address: pod.local, port: 80")),
              "routes[0].endpoints[0].address", "must be an IPv4 or IPv6 address");
  CHECK_ERROR(parseErrors(routeYaml("", "name: e0, address: 10.0.0.300, port: 80")),
              "routes[0].endpoints[0].address", "not \"10.0.0.300\"");
  CHECK_ERROR(parseErrors(routeYaml("", "name: \"e 0\", address: 10.0.0.1, port: 80")),
              "routes[0].endpoints[0].name", "it is sent in a header");
  auto dup = parseErrors(
      "routes:\n  - name: ns/r\n    header: k\n    endpoints:\n"
      "      - {name: e0, address: 10.0.0.1, port: 80}\n"
      "      - {name: e0, address: 10.0.0.2, port: 80}\n");
  CHECK_ERROR(dup, "routes[0].endpoints[1].name",
              "duplicate endpoint name \"e0\" (also routes[0].endpoints[0])");
  CHECK(parseOk(routeYaml("", "name: e0, address: \"::1\", port: 65535"))
            .routes[0]
            .endpoints[0]
            .port == 65535);
}

TEST_CASE("route names are unique and (host, pathPrefix) pairs do not conflict") {
  auto dup = parseErrors(
      "routes:\n  - {name: ns/a, header: k, match: {pathPrefix: /x}}\n"
      "  - {name: ns/a, header: k, match: {pathPrefix: /y}}\n");
  CHECK_ERROR(dup, "routes[1].name", "duplicate route name \"ns/a\" (also routes[0])");

  auto any = parseErrors("routes:\n  - {name: ns/a, header: k}\n  - {name: ns/b, header: k}\n");
  CHECK_ERROR(any, "routes[1].match",
              "route \"ns/b\" conflicts with route \"ns/a\" (routes[0]): both match any host and "
              "path prefix \"/\"");

  auto host = parseErrors(
      "routes:\n  - {name: ns/a, header: k, match: {hosts: [x.io, y.io], pathPrefix: /api}}\n"
      "  - {name: ns/b, header: k, match: {hosts: [Y.io], pathPrefix: /api}}\n");
  CHECK_ERROR(host, "routes[1].match", "both match host \"y.io\" and path prefix \"/api\"");

  // Same host with different prefixes, or same prefix on different hosts, is fine.
  CHECK(parseOk("routes:\n  - {name: ns/a, header: k, match: {hosts: [x.io], pathPrefix: /a}}\n"
                "  - {name: ns/b, header: k, match: {hosts: [x.io], pathPrefix: /b}}\n"
                "  - {name: ns/c, header: k, match: {hosts: [y.io], pathPrefix: /a}}\n"
                "  - {name: ns/d, header: k, match: {pathPrefix: /a}}\n")
            .routes.size() == 4);
}

TEST_CASE("limits, header names and listen are validated") {
  CHECK_ERROR(parseErrors("limits: {maxHeaderBytes: 100}\n"), "limits.maxHeaderBytes",
              "must be an integer between 1024 and 1048576, not 100");
  CHECK_ERROR(parseErrors("limits: {maxHeaderCount: 0}\n"), "limits.maxHeaderCount",
              "between 1 and 10000");
  CHECK_ERROR(parseErrors("limits: {upstreamConnectTimeout: 0ms}\n"),
              "limits.upstreamConnectTimeout", "must be a positive duration");
  CHECK_ERROR(parseErrors("limits: {drainTimeout: soon}\n"), "limits.drainTimeout",
              "must be a duration");
  CHECK_ERROR(parseErrors("limits: {maxConnections: 0}\n"), "limits.maxConnections",
              "between 1 and 10000000");
  CHECK_ERROR(parseErrors("limits: {tunnelIdleTimeout: 0s}\n"), "limits.tunnelIdleTimeout",
              "must be a positive duration");
  CHECK_ERROR(parseErrors("limits: {clientSendTimeout: 0s}\n"), "limits.clientSendTimeout",
              "must be a positive duration");
  CHECK(
      parseOk("limits: {upstreamMaxIdlePerEndpoint: 0}\n").limits.upstream_max_idle_per_endpoint ==
      0);
  CHECK_ERROR(parseErrors("headers: {movedFrom: \"moved from\"}\n"), "headers.movedFrom",
              "must be an HTTP header name");
  CHECK_ERROR(parseErrors("headers: {sessionMoved: \"\"}\n"), "headers.sessionMoved",
              "must be an HTTP header name");
  CHECK_ERROR(parseErrors("listen: \"8080\"\n"), "listen", "must be \"host:port\"");
  CHECK_ERROR(parseErrors("listen: \"0.0.0.0:99999\"\n"), "listen", "must be \"host:port\"");
  CHECK(parseOk("listen: \"[::1]:0\"\n").listen == "[::1]:0");
  CHECK(parseOk("listen: \"localhost:8080\"\n").listen == "localhost:8080");
  // An empty host would pass here and fail when the server binds: refused up front instead.
  CHECK_ERROR(parseErrors("listen: \":8080\"\n"), "listen",
              "such as \"0.0.0.0:8080\" (every address)");
}

TEST_CASE("every error is reported, not just the first") {
  auto errors = parseErrors(
      "version: x\nlimits: {maxHeaderBytes: 10}\nroutes:\n"
      "  - {name: bad, header: \"a b\", ttl: 0s, endpoints: [{name: e, address: h, port: 0}]}\n");
  CHECK_ERROR(errors, "version", "must be a non-negative integer");
  CHECK_ERROR(errors, "limits.maxHeaderBytes", "between 1024");
  CHECK_ERROR(errors, "routes[0].name", "namespace/name");
  CHECK_ERROR(errors, "routes[0].header", "HTTP header name");
  CHECK_ERROR(errors, "routes[0].ttl", "positive duration");
  CHECK_ERROR(errors, "routes[0].endpoints[0].address", "IPv4 or IPv6");
  CHECK_ERROR(errors, "routes[0].endpoints[0].port", "between 1 and 65535");
  CHECK(errors.size() == 7);
  CHECK(errors[0].toString().find(": ") != std::string::npos);
}

TEST_CASE("syntax errors carry the position - duplicate fields are errors") {
  auto json_errors = parseErrors("{\"version\": 1,,}");
  REQUIRE(json_errors.size() == 1);
  CHECK(json_errors[0].path.empty());
  CHECK(json_errors[0].message.find("invalid JSON") == 0);
  CHECK(json_errors[0].message.find("line 1, column 15") != std::string::npos);

  auto yaml_errors = parseErrors("routes:\n  - name: ns/r\n    header: [unclosed\n");
  REQUIRE(yaml_errors.size() == 1);
  CHECK(yaml_errors[0].message.find("invalid YAML at line") == 0);

  CHECK_ERROR(
      parseErrors("{\"routes\": [{\"name\": \"ns/r\", \"header\": \"a\", \"header\": \"b\"}]}"),
      "routes[0].header", "duplicate field");
  CHECK_ERROR(parseErrors("routes:\n  - name: ns/r\n    header: a\n    header: b\n"),
              "routes[0].header", "duplicate field (at line 4");

  auto empty = parseErrors("  \n");
  CHECK(empty[0].message.find("the config is empty") == 0);
}

TEST_CASE("a YAML alias inside its own anchor is refused, not followed forever") {
  // Found by fuzz/config_fuzz.cc: the endless tree overflowed the stack.
  auto errors = parseErrors("base: &b {nadees: [*b]}\nroutes: [*b]\n");
  REQUIRE(!errors.empty());
  CHECK(errors[0].message.find("levels deep (at line 1") != std::string::npos);
  // Nesting a config really has stays readable.
  CHECK(parseProxyConfig("routes: []\nheaders: {movedFrom: x-a}\n").ok());
}

TEST_CASE("YAML text that is not UTF-8 is refused, as JSON refuses it") {
  // Found by fuzz/config_fuzz.cc: a keyPrefix with a stray byte was accepted from YAML, and the
  // config's JSON form (GET /v1/config) then held U+FFFD instead: another config.
  CHECK_ERROR(parseErrors("sharedTable:\n  redis:\n    address: r:6379\n    keyPrefix: \xc5k\n"
                          "routes: []\n"),
              "sharedTable.redis.keyPrefix", "is not valid UTF-8 (at line 4");
  CHECK_ERROR(parseErrors("routes: []\n\xc5x: 1\n"), "", "a field name is not valid UTF-8");
  CHECK_ERROR(parseErrors("{\"listen\": \"\xc5k\"}"), "", "invalid JSON");
  // Valid UTF-8 of every length still reads.
  auto parsed = parseProxyConfig(
      "sharedTable: {redis: {address: 'r:6379', keyPrefix: "
      "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80:\"}}\n"
      "routes: []\n");
  REQUIRE(parsed.ok());
  CHECK(parsed->shared_table.redis->key_prefix == "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80:");
}

TEST_CASE("validate() checks a config built in code") {
  ProxyConfig c;
  CHECK(validate(c).empty());
  RouteConfig r;
  r.name = "ns/r";
  r.header = "Client-Id";  // any case is a valid token; parsing lower-cases it
  r.endpoints.push_back({"e0", "10.0.0.1", 0, EndpointState::Active});
  c.routes.push_back(r);
  auto errors = validate(c);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].toString() ==
        "routes[0].endpoints[0].port: must be an integer between 1 and 65535");
  c.routes[0].endpoints[0].port = 80;
  CHECK(validate(c).empty());
  normalize(c);
  CHECK(c.routes[0].header == "client-id");
}

TEST_CASE("sharedTable.redis - read, defaulted, round-tripped") {
  ProxyConfig direct = parseOk(
      "sharedTable:\n  redis: {address: \"redis.kube-sticky:6379\", username: proxy,\n"
      "          passwordFile: /etc/redis/password, keyPrefix: \"prod:\", commandTimeout: 50ms}\n");
  REQUIRE(direct.shared_table.enabled());
  const RedisConfig& r = *direct.shared_table.redis;
  CHECK(r.address == "redis.kube-sticky:6379");
  CHECK(r.username == "proxy");
  CHECK(r.password_file == "/etc/redis/password");
  CHECK(r.key_prefix == "prod:");
  CHECK(r.command_timeout == 50ms);
  CHECK(r.connect_timeout == 500ms);  // default
  CHECK(parseOk(toJsonString(direct)) == direct);

  ProxyConfig sentinels = parseOk(
      R"({"sharedTable": {"redis": {"sentinels": ["s-0:26379", "s-1:26379"],
          "masterName": "mymaster"}}})");
  CHECK(sentinels.shared_table.redis->sentinels.size() == 2);
  CHECK(sentinels.shared_table.redis->key_prefix == "sticky:");
  CHECK(parseOk(toJsonString(sentinels)) == sentinels);

  CHECK_FALSE(parseOk("{}").shared_table.enabled());
  CHECK_FALSE(toJson(parseOk("{}")).contains("sharedTable"));
}

TEST_CASE("sharedTable.redis - every mistake is named") {
  CHECK_ERROR(parseErrors("sharedTable: {redis: {}}\n"), "sharedTable.redis",
              "give either address");
  CHECK_ERROR(parseErrors("sharedTable: {redis: {address: \"a:1\", sentinels: [\"b:2\"], "
                          "masterName: m}}\n"),
              "sharedTable.redis", "not both");
  CHECK_ERROR(parseErrors("sharedTable: {redis: {address: redis}}\n"), "sharedTable.redis.address",
              "must be \"host:port\"");
  CHECK_ERROR(parseErrors("sharedTable: {redis: {sentinels: [\"s:26379\", \"bad\"], "
                          "masterName: m}}\n"),
              "sharedTable.redis.sentinels[1]", "must be \"host:port\"");
  CHECK_ERROR(parseErrors("sharedTable: {redis: {sentinels: [\"s:26379\"]}}\n"),
              "sharedTable.redis.masterName", "is required with sentinels");
  CHECK_ERROR(parseErrors("sharedTable: {redis: {address: \"r:6379\", commandTimeout: 0s}}\n"),
              "sharedTable.redis.commandTimeout", "must be a positive duration");
  CHECK_ERROR(parseErrors("sharedTable: {redis: {address: \"r:6379\", db: 2}}\n"),
              "sharedTable.redis.db", "");
  CHECK_ERROR(parseErrors("sharedTable: {memcached: {}}\n"), "sharedTable.memcached", "");
}

TEST_CASE("sharedTable.redis TLS - read, defaulted, round-tripped") {
  test::TempDir dir;
  for (const char* name : {"ca.crt", "client.crt", "client.key"})
    test::writeFile(dir.file(name), "x");
  ProxyConfig plain = parseOk("sharedTable: {redis: {address: \"r:6379\", tls: true}}\n");
  const RedisConfig& p = *plain.shared_table.redis;
  CHECK(p.tls);
  CHECK(p.ca_file.empty());  // the system's CAs
  CHECK(p.server_name.empty());
  CHECK_FALSE(p.insecure_skip_verify);
  CHECK(p.cert_file.empty());
  CHECK(parseOk(toJsonString(plain)) == plain);
  CHECK(toJson(plain)["sharedTable"]["redis"]["tls"] == true);

  ProxyConfig full = parseOk(R"({"sharedTable": {"redis": {"address": "r:6379", "tls": true,
      "caFile": ")" + dir.file("ca.crt") +
                             R"(", "serverName": "redis.example.com",
      "certFile": ")" + dir.file("client.crt") +
                             R"(", "keyFile": ")" + dir.file("client.key") + R"("}}})");
  const RedisConfig& f = *full.shared_table.redis;
  CHECK(f.ca_file == dir.file("ca.crt"));
  CHECK(f.server_name == "redis.example.com");
  CHECK(f.cert_file == dir.file("client.crt"));
  CHECK(f.key_file == dir.file("client.key"));
  CHECK(parseOk(toJsonString(full)) == full);
  CHECK(toJson(full)["sharedTable"]["redis"]["caFile"] == dir.file("ca.crt"));

  ProxyConfig insecure =
      parseOk("sharedTable: {redis: {address: \"r:6379\", tls: true, insecureSkipVerify: true}}\n");
  CHECK(insecure.shared_table.redis->insecure_skip_verify);
  CHECK(parseOk(toJsonString(insecure)) == insecure);
}

TEST_CASE("sharedTable.redis TLS - every mistake is named") {
  test::TempDir dir;
  test::writeFile(dir.file("client.crt"), "x");
  std::string redis = "sharedTable: {redis: {address: \"r:6379\", ";
  CHECK_ERROR(parseErrors(redis + "caFile: /ca.crt}}\n"), "sharedTable.redis.caFile",
              "is only used with TLS; set tls: true (--redis-tls) or remove it");
  CHECK_ERROR(parseErrors(redis + "tls: false, insecureSkipVerify: true}}\n"),
              "sharedTable.redis.insecureSkipVerify", "is only used with TLS");
  CHECK_ERROR(parseErrors(redis + "serverName: r}}\n"), "sharedTable.redis.serverName",
              "is only used with TLS");
  CHECK_ERROR(parseErrors(redis + "tls: true, caFile: " + dir.file("none.crt") + "}}\n"),
              "sharedTable.redis.caFile",
              "cannot read \"" + dir.file("none.crt") +
                  "\" (No such file or directory); mount the file there or fix the path");
  CHECK_ERROR(parseErrors(redis + "tls: true, certFile: " + dir.file("client.crt") + "}}\n"),
              "sharedTable.redis.keyFile", "a client certificate needs both certFile and keyFile");
  CHECK_ERROR(parseErrors(redis + "tls: true, keyFile: " + dir.file("client.crt") + "}}\n"),
              "sharedTable.redis.certFile", "needs both certFile and keyFile");
  CHECK_ERROR(parseErrors(redis + "tls: true, certFile: " + dir.file("client.crt") +
                          ", keyFile: " + dir.file("missing.key") + "}}\n"),
              "sharedTable.redis.keyFile", "cannot read");
  CHECK_ERROR(parseErrors(redis + "tls: true, serverName: \"redis example\"}}\n"),
              "sharedTable.redis.serverName", "must be a host name or IP address");
  CHECK_ERROR(parseErrors(redis + "tls: \"yes\"}}\n"), "sharedTable.redis.tls", "");
}

TEST_CASE("toJson round-trips exactly") {
  ProxyConfig c = parseOk(kFullYaml);
  CHECK(proxyConfigFromJson(toJson(c)).value() == c);
  CHECK(parseOk(toJsonString(c)) == c);
  CHECK(parseOk(toJsonString(c, 2)) == c);
  ProxyConfig defaults = parseOk("{}");
  CHECK(parseOk(toJsonString(defaults)) == defaults);
  nlohmann::json j = toJson(c);
  CHECK(j["routes"][0]["ttl"] == "1h30m");
  CHECK(j["routes"][0]["maxSessions"] == 5000);
  CHECK(j["limits"]["upstreamConnectTimeout"] == "500ms");
  CHECK(j["routes"][0]["endpoints"][1]["state"] == "Draining");
}

TEST_CASE("durations parse Go-style and format in the shortest exact form") {
  struct Case {
    const char* text;
    Duration value;
  };
  for (Case c : {Case{"30m", 30min}, Case{"1h30m", 90min}, Case{"250ms", 250ms}, Case{"10s", 10s},
                 Case{"0", 0ms}, Case{"1.5s", 1500ms}, Case{"1.5h", 90min}, Case{"2h0m5s", 2h + 5s},
                 Case{"1s500ms", 1500ms}, Case{"0.25s", 250ms}, Case{"100h", 100h}}) {
    auto d = parseDuration(c.text);
    REQUIRE_MESSAGE(d.ok(), c.text);
    CHECK_MESSAGE(*d == c.value, c.text);
  }
  for (const char* bad : {"", "30", "m", "1d", "-5m", "1.5ms", "1.0001s", "1.s", "5 m", "1h 2m",
                          "99999999999999999999h", "0x10s", "1us"}) {
    auto d = parseDuration(bad);
    CHECK_MESSAGE(!d.ok(), bad);
    if (!d.ok()) CHECK(d.error().message.find("must be a duration such as") == 0);
  }
  CHECK(formatDuration(30min) == "30m");
  CHECK(formatDuration(90min) == "1h30m");
  CHECK(formatDuration(250ms) == "250ms");
  CHECK(formatDuration(1500ms) == "1s500ms");
  CHECK(formatDuration(0ms) == "0s");
  CHECK(formatDuration(26h + 1ms) == "26h1ms");
  for (int64_t ms : {1, 999, 1000, 59999, 60000, 3600000, 3723004, 86400000}) {
    Duration d(ms);
    CHECK(parseDuration(formatDuration(d)).value() == d);
  }
}

TEST_CASE("header tokens follow RFC 9110") {
  CHECK(isHeaderToken("client-id"));
  CHECK(isHeaderToken("X-Client_ID.v2"));
  CHECK(isHeaderToken("!#$%&'*+-.^_`|~"));
  CHECK_FALSE(isHeaderToken(""));
  CHECK_FALSE(isHeaderToken("client id"));
  CHECK_FALSE(isHeaderToken("client:id"));
  CHECK_FALSE(isHeaderToken("a\"b"));
  CHECK_FALSE(isHeaderToken(std::string_view("a\0b", 3)));
  CHECK_FALSE(isHeaderToken("caf\xc3\xa9"));
}

TEST_CASE("enum names") {
  CHECK(std::string(toString(Placement::RoundRobin)) == "RoundRobin");
  CHECK(std::string(toString(OnMissingKey::Reject)) == "Reject");
  CHECK(std::string(toString(OnEndpointLost::Reassign)) == "Reassign");
  CHECK(std::string(toString(EndpointState::Draining)) == "Draining");
}

}  // namespace
}  // namespace sticky
