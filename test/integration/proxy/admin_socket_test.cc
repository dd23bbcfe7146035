// The admin socket and metrics of the real sticky-proxy binary, with real backends and clients:
// config pushes under load, session dump and eviction, readiness, metrics that move.
#include <doctest/doctest.h>

#include <atomic>
#include <ctime>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "admin_api/admin_client.h"
#include "config/model.h"
#include "support/backend.h"
#include "support/http_client.h"
#include "support/process.h"
#include "support/promtool.h"
#include "support/proxy_process.h"

namespace sticky::proxy {
namespace {

using namespace std::chrono_literals;

// A sticky-proxy process with an admin socket and a metrics port; no config until one is pushed
// (or `config_file` is given).
struct ProxyProcess {
  test::TempDir dir;
  test::ProxyProcess launched;
  uint16_t port = launched.port();  // picked by the proxy (port 0), read from its start line
  uint16_t metrics_port = launched.metricsPort();
  admin::AdminClient admin = launched.admin(10s);

  explicit ProxyProcess(const std::string& config_file = {})
      : launched({.log_path = dir.file("proxy.log"),
                  .config_file = config_file,
                  .admin_socket = dir.file("admin.sock"),
                  .metrics = true,
                  .workers = 2}) {}

  std::string metrics() {
    test::HttpClient client("127.0.0.1", metrics_port);
    test::HttpResponse res = client.get("/metrics");
    REQUIRE_MESSAGE(res.status == 200, res.error);
    return res.body;
  }
};

struct Backends {
  std::vector<std::unique_ptr<test::Backend>> list;
  explicit Backends(int n) {
    for (int i = 0; i < n; ++i) {
      list.push_back(std::make_unique<test::Backend>("127.0.0.1", 0, "chat-" + std::to_string(i)));
    }
  }
  EndpointConfig endpoint(int i, EndpointState state = EndpointState::Active) const {
    return {list[i]->name(), "127.0.0.1", list[i]->port(), state};
  }
};

RouteConfig chatRoute(std::vector<EndpointConfig> endpoints) {
  RouteConfig route;
  route.name = "shop/chat";
  route.header = "client-id";
  route.endpoints = std::move(endpoints);
  return route;
}

ProxyConfig configWith(uint64_t version, std::vector<RouteConfig> routes) {
  ProxyConfig config;
  config.version = version;
  config.routes = std::move(routes);
  return config;
}

// The value of one sample line ("name{labels}") in a scrape, or -1 if absent.
double metricValue(const std::string& scrape, const std::string& sample) {
  std::istringstream in(scrape);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > sample.size() && line.compare(0, sample.size(), sample) == 0 &&
        line[sample.size()] == ' ') {
      return std::stod(line.substr(sample.size() + 1));
    }
  }
  return -1;
}

// Sends one keyed request; returns the backend that answered ("" on failure, with `why`).
std::string landOn(test::HttpClient& client, const std::string& key, std::string* why = nullptr) {
  test::HttpResponse res = client.get("/", {{"client-id", key}});
  if (res.status != 200) {
    if (why) *why = "status " + std::to_string(res.status) + " " + res.error + " " + res.body;
    return "";
  }
  return res.header("x-backend");
}

TEST_CASE("proxy admin: readiness follows the first config - bad configs are refused") {
  Backends backends(2);
  ProxyProcess proxy;
  CHECK_FALSE(proxy.admin.ready());
  // The kubelet's view: the same answers on the metrics port.
  test::HttpClient probe("127.0.0.1", proxy.metrics_port);
  CHECK(probe.get("/healthz").status == 200);
  CHECK(probe.get("/readyz").status == 503);
  auto cfg = proxy.admin.getConfig();
  REQUIRE(cfg.ok());
  CHECK_FALSE(cfg->has_value());

  ProxyConfig config = configWith(1, {chatRoute({backends.endpoint(0), backends.endpoint(1)})});
  auto put = proxy.admin.putConfig(config);
  REQUIRE_MESSAGE(put.ok(), (put.ok() ? "" : put.error().message));
  CHECK(proxy.admin.ready());
  CHECK(probe.get("/readyz").status == 200);
  test::HttpClient client("127.0.0.1", proxy.port);
  std::string first = landOn(client, "user-1");
  CHECK_FALSE(first.empty());

  // Invalid: every error comes back, the running config keeps serving the same session.
  ProxyConfig bad = configWith(2, {chatRoute({backends.endpoint(0), backends.endpoint(1)})});
  bad.routes[0].header = "no spaces allowed";
  bad.routes[0].endpoints[1].port = 0;
  auto refused = proxy.admin.putConfig(bad);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("routes[0].header") != std::string::npos);
  CHECK(refused.error().message.find("routes[0].endpoints[1].port") != std::string::npos);
  cfg = proxy.admin.getConfig();
  REQUIRE(cfg.ok());
  REQUIRE(cfg->has_value());
  CHECK((*cfg)->version == 1);
  CHECK(landOn(client, "user-1") == first);
  CHECK(metricValue(proxy.metrics(), "sticky_config_rejects_total") >= 1);
}

TEST_CASE("proxy admin: a proxy started with --config is ready at once") {
  Backends backends(1);
  test::TempDir dir;
  std::string file = dir.file("proxy.json");
  test::writeFile(file, toJsonString(configWith(9, {chatRoute({backends.endpoint(0)})})));
  ProxyProcess proxy(file);
  CHECK(proxy.admin.ready());
  auto stats = proxy.admin.stats();
  REQUIRE(stats.ok());
  CHECK(stats->config_version == 9);
}

TEST_CASE("proxy admin: config pushes under concurrent load lose no request and keep sessions") {
  Backends backends(3);
  ProxyProcess proxy;
  std::vector<EndpointConfig> endpoints = {backends.endpoint(0), backends.endpoint(1),
                                           backends.endpoint(2)};
  REQUIRE(proxy.admin.putConfig(configWith(1, {chatRoute(endpoints)})).ok());

  constexpr int kThreads = 4;
  constexpr int kKeysPerThread = 25;
  constexpr int kPushes = 20;
  constexpr int kMinRequestsPerThread = 200;
  constexpr int kMaxRequestsPerThread = 20000;
  std::atomic<bool> pushes_done{false};
  std::atomic<int> started{0};
  std::atomic<int> total_requests{0};
  struct Outcome {
    int requests = 0;
    std::vector<std::string> failures;
    std::map<std::string, std::set<std::string>> landed;  // key -> backends seen
  };
  std::vector<Outcome> outcomes(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      test::HttpClient client("127.0.0.1", proxy.port);
      Outcome& out = outcomes[t];
      for (int i = 0; i < kMaxRequestsPerThread; ++i) {
        if (pushes_done && out.requests >= kMinRequestsPerThread) break;
        std::string key = "t" + std::to_string(t) + "-k" + std::to_string(i % kKeysPerThread);
        std::string why;
        std::string backend = landOn(client, key, &why);
        ++out.requests;
        ++total_requests;
        if (backend.empty()) {
          out.failures.push_back(key + ": " + why);
        } else {
          out.landed[key].insert(backend);
        }
        if (i == 0) ++started;
      }
    });
  }

  // Push while every client is sending: new versions, a route coming and going, a TTL change.
  REQUIRE(test::waitFor([&] { return started == kThreads; }, 30s));
  std::vector<std::string> push_errors;
  for (int v = 2; v < 2 + kPushes; ++v) {
    RouteConfig chat = chatRoute(endpoints);
    chat.ttl = v % 2 ? std::chrono::minutes(30) : std::chrono::minutes(29);
    std::vector<RouteConfig> routes = {chat};
    if (v % 3 == 0) {
      RouteConfig other = chatRoute({backends.endpoint(2)});
      other.name = "shop/other";
      other.header = "x-user";
      other.match.hosts = {"other.example.com"};
      routes.push_back(other);
    }
    auto put = proxy.admin.putConfig(configWith(v, routes));
    if (!put.ok()) push_errors.push_back(put.error().message);
    // Let traffic flow between pushes, so every push lands amid requests.
    int seen = total_requests;
    CHECK(test::waitFor([&] { return total_requests >= seen + 4 * kThreads; }, 30s));
  }
  pushes_done = true;
  for (auto& th : threads) th.join();

  CHECK(push_errors.empty());
  int total = 0;
  for (int t = 0; t < kThreads; ++t) {
    const Outcome& out = outcomes[t];
    total += out.requests;
    CHECK_MESSAGE(out.failures.empty(), out.failures.size()
                                            << " failed, first: " << out.failures.front());
    CHECK(out.landed.size() == kKeysPerThread);
    for (const auto& [key, seen] : out.landed) {
      CHECK_MESSAGE(seen.size() == 1, key << " landed on " << seen.size() << " backends");
    }
  }
  MESSAGE(total << " requests during " << kPushes << " config pushes");

  auto stats = proxy.admin.stats();
  REQUIRE(stats.ok());
  CHECK(stats->config_version == 1 + kPushes);
  const admin::RouteStatsView* chat = stats->findRoute("shop/chat");
  REQUIRE(chat != nullptr);
  CHECK(chat->sessions == kThreads * kKeysPerThread);
  CHECK(chat->placements == kThreads * kKeysPerThread);
  CHECK(chat->requests == static_cast<uint64_t>(total));
  CHECK(chat->moves == 0);
  uint64_t endpoint_sessions = 0;
  for (const auto& ep : chat->endpoints) endpoint_sessions += ep.sessions;
  CHECK(endpoint_sessions == chat->sessions);
}

TEST_CASE("proxy admin: session dump and eviction change where the next request lands") {
  Backends backends(2);
  ProxyProcess proxy;
  // Only chat-0 first: every key is pinned there.
  REQUIRE(proxy.admin.putConfig(configWith(1, {chatRoute({backends.endpoint(0)})})).ok());
  test::HttpClient client("127.0.0.1", proxy.port);
  const std::vector<std::string> keys = {"alice", "bob", "carol", "dave", "erin"};
  for (const auto& key : keys) REQUIRE(landOn(client, key) == "chat-0");

  // chat-1 joins and chat-0 starts draining: pinned sessions stay on chat-0.
  REQUIRE(proxy.admin
              .putConfig(configWith(2, {chatRoute({backends.endpoint(0, EndpointState::Draining),
                                                   backends.endpoint(1)})}))
              .ok());
  for (const auto& key : keys) CHECK(landOn(client, key) == "chat-0");

  auto dump = proxy.admin.sessions("shop/chat", 100);
  REQUIRE(dump.ok());
  CHECK(dump->total == keys.size());
  REQUIRE(dump->sessions.size() == keys.size());
  for (const auto& s : dump->sessions) CHECK(s.endpoint == "chat-0");
  auto limited = proxy.admin.sessions("shop/chat", 2);
  REQUIRE(limited.ok());
  CHECK(limited->sessions.size() == 2);
  CHECK(limited->total == keys.size());
  CHECK_FALSE(proxy.admin.sessions("shop/nope", 10).ok());

  // Evict one key: its next request is placed anew, on the only Active endpoint.
  auto one = proxy.admin.evictKey("shop/chat", "alice");
  REQUIRE(one.ok());
  CHECK(*one == 1);
  CHECK(landOn(client, "alice") == "chat-1");
  CHECK(landOn(client, "bob") == "chat-0");

  // Evict the rest of chat-0's sessions at once.
  auto rest = proxy.admin.evictEndpoint("shop/chat", "chat-0");
  REQUIRE(rest.ok());
  CHECK(*rest == keys.size() - 1);
  for (const auto& key : keys) CHECK(landOn(client, key) == "chat-1");
  dump = proxy.admin.sessions("shop/chat", 100);
  REQUIRE(dump.ok());
  for (const auto& s : dump->sessions) CHECK(s.endpoint == "chat-1");

  std::string scrape = proxy.metrics();
  CHECK(
      metricValue(
          scrape,
          R"(sticky_sessions_evicted_total{namespace="shop",stickyroute="chat",reason="admin"})") ==
      keys.size());
  CHECK(metricValue(
            scrape,
            R"(sticky_endpoint_sessions{namespace="shop",stickyroute="chat",pod="chat-1"})") ==
        keys.size());
  CHECK(metricValue(
            scrape,
            R"(sticky_endpoint_sessions{namespace="shop",stickyroute="chat",pod="chat-0"})") == 0);
}

TEST_CASE("proxy admin: metrics scrape shows the counters moving") {
  Backends backends(2);
  ProxyProcess proxy;
  std::string before = proxy.metrics();
  CHECK(metricValue(before, "sticky_config_loaded") == 0);
  CHECK(before.find("sticky_config_info{") == std::string::npos);
  CHECK(metricValue(before, "sticky_config_last_applied_timestamp_seconds") == 0);

  // A version like the operator's (a 64-bit hash): more digits than a float sample keeps.
  constexpr uint64_t kVersion = 0xfedcba9876543211;
  const double pushed_at = static_cast<double>(std::time(nullptr));
  REQUIRE(proxy.admin
              .putConfig(
                  configWith(kVersion, {chatRoute({backends.endpoint(0), backends.endpoint(1)})}))
              .ok());
  test::HttpClient client("127.0.0.1", proxy.port);
  std::map<std::string, int> per_backend;
  for (int i = 0; i < 30; ++i) {
    std::string backend = landOn(client, "key-" + std::to_string(i % 6));
    REQUIRE_FALSE(backend.empty());
    ++per_backend[backend];
  }

  std::string after = proxy.metrics();
  CHECK(metricValue(after, "sticky_config_loaded") == 1);
  // One spelling of the version: the admin API's number, the log and the metric's label agree.
  auto stats = proxy.admin.stats();
  REQUIRE(stats.ok());
  CHECK(stats->config_version == kVersion);
  CHECK(configVersionHex(stats->config_version) == "fedcba9876543211");
  CHECK(metricValue(after, R"(sticky_config_info{hash="fedcba9876543211"})") == 1);
  CHECK(proxy.launched.log().find("config applied: version fedcba9876543211 (1 routes") !=
        std::string::npos);
  double applied_at = metricValue(after, "sticky_config_last_applied_timestamp_seconds");
  CHECK(applied_at >= pushed_at - 1);
  CHECK(applied_at <= static_cast<double>(std::time(nullptr)) + 1);
  CHECK(metricValue(after, R"(sticky_route_requests_total{namespace="shop",stickyroute="chat"})") ==
        30);
  CHECK(metricValue(after, R"(sticky_sessions{namespace="shop",stickyroute="chat"})") == 6);
  CHECK(metricValue(after,
                    R"(sticky_sessions_placed_total{namespace="shop",stickyroute="chat"})") == 6);
  double responses = 0;
  for (const auto& [backend, n] : per_backend) {
    double v = metricValue(
        after, R"(sticky_upstream_responses_total{namespace="shop",stickyroute="chat",pod=")" +
                   backend + R"(",code_class="2xx"})");
    CHECK(v == n);
    responses += v;
  }
  CHECK(responses == 30);
  CHECK(metricValue(
            after,
            R"(sticky_upstream_latency_seconds_count{namespace="shop",stickyroute="chat"})") == 30);
  CHECK(
      metricValue(
          after,
          R"(sticky_upstream_latency_seconds_bucket{namespace="shop",stickyroute="chat",le="+Inf"})") ==
      30);
  CHECK(metricValue(after, "sticky_connections_accepted_total") >= 1);
  CHECK(metricValue(after, "sticky_config_applies_total") >= 1);
  CHECK(metricValue(
            after, R"(sticky_endpoint_up{namespace="shop",stickyroute="chat",pod="chat-0"})") == 1);

  // Unknown metrics path and wrong method are refused.
  test::HttpClient scraper("127.0.0.1", proxy.metrics_port);
  CHECK(scraper.get("/").status == 404);
  CHECK(scraper.request("POST", "/metrics").status == 405);
}

TEST_CASE("proxy metrics: every response the client sees, by route, class and source") {
  Backends backends(1);
  ProxyProcess proxy;
  RouteConfig chat = chatRoute({backends.endpoint(0)});
  chat.match.path_prefix = "/chat";
  chat.on_missing_key = OnMissingKey::Reject;
  RouteConfig drained = chatRoute({backends.endpoint(0, EndpointState::Draining)});
  drained.name = "billing/drained";
  drained.match.path_prefix = "/drained";
  REQUIRE(proxy.admin.putConfig(configWith(9, {chat, drained})).ok());

  test::HttpClient client("127.0.0.1", proxy.port);
  for (int i = 0; i < 3; ++i) CHECK(client.get("/chat", {{"client-id", "alice"}}).status == 200);
  CHECK(client.get("/chat").status == 400);                                 // no session header
  CHECK(client.get("/elsewhere", {{"client-id", "alice"}}).status == 404);  // no route
  CHECK(client.get("/drained", {{"client-id", "bob"}}).status == 503);      // no active endpoint
  auto malformed = test::rawExchange("127.0.0.1", proxy.port, "GET / HTTP/1.1\r\nno colon\r\n\r\n");
  CHECK(malformed.status == 400);

  std::string scrape = proxy.metrics();
  INFO(scrape);
  auto responses = [&](std::string_view ns, std::string_view route, std::string_view code_class,
                       std::string_view source) {
    return metricValue(scrape, "sticky_responses_total{namespace=\"" + std::string(ns) +
                                   "\",stickyroute=\"" + std::string(route) + "\",code_class=\"" +
                                   std::string(code_class) + "\",source=\"" + std::string(source) +
                                   "\"}");
  };
  CHECK(responses("shop", "chat", "2xx", "upstream") == 3);
  CHECK(responses("shop", "chat", "4xx", "proxy") == 1);
  CHECK(responses("shop", "chat", "2xx", "proxy") == 0);
  CHECK(responses("billing", "drained", "5xx", "proxy") == 1);
  CHECK(responses("billing", "drained", "5xx", "upstream") == 0);
  // Before any route matched: the 404 and the malformed request.
  CHECK(responses("", "", "4xx", "proxy") == 2);
  CHECK(responses("", "", "5xx", "proxy") == 0);
  // Every response sent, once: sum(sticky_responses_total) is what the clients got.
  double total = 0;
  std::istringstream in(scrape);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("sticky_responses_total{", 0) == 0)
      total += std::stod(line.substr(line.rfind(' ')));
  }
  CHECK(total == 7);
  // The pod's own view counts only what it answered.
  CHECK(
      metricValue(
          scrape,
          R"(sticky_upstream_responses_total{namespace="shop",stickyroute="chat",pod="chat-0",code_class="2xx"})") ==
      3);

  test::TempDir dir;
  auto problems = test::promtoolProblems(dir, "proxy", scrape);
  if (problems)
    CHECK_MESSAGE(problems->empty(), *problems);
  else
    MESSAGE("promtool is not installed; the scrape's syntax was not checked by it");
}

}  // namespace
}  // namespace sticky::proxy
