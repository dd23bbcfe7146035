// Stickiness through the real sticky-proxy: placement, TTL, draining, endpoint removal
// (Reassign and Reject), passive failover, pooled-connection retry, 404 and 503.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <sstream>

#include "integration/proxy/proxy_harness.h"

namespace sticky::test {
namespace {

using sticky::EndpointState;
using sticky::OnEndpointLost;
using sticky::Placement;

constexpr const char* kMovedFrom = "x-sticky-moved-from";
constexpr const char* kSessionMoved = "x-sticky-session-moved";

/// The Prometheus sample `name{...labels containing label_part...}`, or -1.
double metric(uint16_t port, const std::string& name, const std::string& label_part) {
  HttpClient c("127.0.0.1", port);
  auto res = c.get("/metrics");
  if (res.status != 200) return -1;
  std::istringstream in(res.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + "{", 0) != 0 || line.find(label_part) == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

/// Sends one request per key and returns key -> backend name.
std::map<std::string, std::string> placeKeys(HttpClient& client, int n,
                                             const std::string& prefix = "k") {
  std::map<std::string, std::string> where;
  for (int i = 0; i < n; ++i) {
    std::string k = prefix + std::to_string(i);
    auto res = client.get("/", key(k));
    REQUIRE_MESSAGE(res.status == 200, k << ": " << res.status << " " << res.error << res.body);
    where[k] = backendOf(res);
  }
  return where;
}

TEST_CASE("1,000 keys stay on their endpoint over repeated requests") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  ProxyProc proxy(
      dir, configOf(1, {stickyRoute("shop/chat", {b1.endpoint(), b2.endpoint(), b3.endpoint()})}));
  auto client = proxy.client();
  auto first = placeKeys(client, 1000);
  std::map<std::string, int> per_backend;
  for (auto& [k, b] : first) per_backend[b]++;
  CHECK(per_backend.size() == 3);
  for (auto& [b, n] : per_backend) {
    INFO("backend " << b);
    CHECK(n >= 300);  // LeastSessions spreads new keys evenly
  }
  // Two more rounds, one on a second connection (likely another worker): nothing moves.
  auto other = proxy.client();
  for (HttpClient* c : {&client, &other}) {
    for (auto& [k, b] : first) {
      auto res = c->get("/again", key(k));
      REQUIRE(res.status == 200);
      CHECK_MESSAGE(backendOf(res) == b, "key " << k << " moved");
      CHECK_FALSE(res.has(kSessionMoved));
    }
  }
  CHECK(client.connectionsOpened() == 1);  // keep-alive held for 2,000 requests
}

TEST_CASE("a session idle past its TTL is forgotten and placed anew") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3");
  auto route = stickyRoute("shop/ttl", {b1.endpoint(), b2.endpoint()}, Placement::RoundRobin);
  route.ttl = std::chrono::seconds(1);
  const std::string ttl_labels = R"(namespace="shop",stickyroute="ttl")";
  ProxyProc proxy(dir, configOf(1, {route}), {"--metrics-listen", "127.0.0.1:0"});
  uint16_t metrics_port = proxy.metricsPort();
  auto client = proxy.client();
  auto res = client.get("/", key("alice"));
  REQUIRE(res.status == 200);
  std::string before = backendOf(res);
  CHECK(metric(metrics_port, "sticky_sessions_placed_total", ttl_labels) == 1);

  // Wait without touching the session (a request would refresh its idle timer): the sweep
  // drops it within a second or two of the TTL.
  bool expired = waitFor(
      [&] { return metric(metrics_port, "sticky_sessions_expired_total", ttl_labels) >= 1; }, 10s,
      100ms);
  REQUIRE(expired);
  CHECK(metric(metrics_port, "sticky_sessions", ttl_labels) == 0);

  res = client.get("/", key("alice"));
  REQUIRE(res.status == 200);
  CHECK(metric(metrics_port, "sticky_sessions_placed_total", ttl_labels) == 2);
  CHECK(backendOf(res) != before);      // round robin's next turn: a new placement, not the old pin
  CHECK_FALSE(res.has(kSessionMoved));  // expiry is not a move
}

TEST_CASE("a draining endpoint keeps its sessions and gets no new one") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3");
  auto config = configOf(1, {stickyRoute("shop/chat", {b1.endpoint(), b2.endpoint()})});
  ProxyProc proxy(dir, config);
  auto client = proxy.client();
  auto pinned = placeKeys(client, 40, "old");
  int on_b1 = 0;
  for (auto& [k, b] : pinned) on_b1 += b == "b1";
  REQUIRE(on_b1 > 0);

  config.version = 2;
  config.routes[0].endpoints[0].state = EndpointState::Draining;
  proxy.reload(config);

  for (auto& [k, b] : pinned) {
    auto res = client.get("/", key(k));
    REQUIRE(res.status == 200);
    CHECK_MESSAGE(backendOf(res) == b, "pinned key " << k << " left " << b);
  }
  auto fresh = placeKeys(client, 40, "new");
  for (auto& [k, b] : fresh) CHECK_MESSAGE(b == "b2", "new key " << k << " went to " << b);
}

TEST_CASE("a removed endpoint's sessions are reassigned with both moved headers") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3");
  auto config = configOf(1, {stickyRoute("shop/chat", {b1.endpoint(), b2.endpoint()})});
  ProxyProc proxy(dir, config);
  auto client = proxy.client();
  auto pinned = placeKeys(client, 20);

  config.version = 2;
  config.routes[0].endpoints = {b2.endpoint()};
  proxy.reload(config);

  int moved = 0;
  for (auto& [k, b] : pinned) {
    auto res = client.get("/", key(k));
    REQUIRE(res.status == 200);
    CHECK(backendOf(res) == "b2");
    if (b == "b1") {
      ++moved;
      CHECK(res.header(kSessionMoved) == "b1");
      CHECK(echoedHeader(res, kMovedFrom) == "b1");
    } else {
      CHECK_FALSE(res.has(kSessionMoved));
      CHECK_FALSE(echoedHas(res, kMovedFrom));
    }
    // Re-pinned: the next request is an ordinary one.
    auto again = client.get("/", key(k));
    CHECK(backendOf(again) == "b2");
    CHECK_FALSE(again.has(kSessionMoved));
    CHECK_FALSE(echoedHas(again, kMovedFrom));
  }
  CHECK(moved > 0);
}

TEST_CASE("onEndpointLost Reject answers 503 with the moved header once, then a new session") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3");
  auto route = stickyRoute("shop/chat", {b1.endpoint(), b2.endpoint()});
  route.on_endpoint_lost = OnEndpointLost::Reject;
  auto config = configOf(1, {route});
  ProxyProc proxy(dir, config);
  auto client = proxy.client();
  auto pinned = placeKeys(client, 20);

  config.version = 2;
  config.routes[0].endpoints = {b2.endpoint()};
  proxy.reload(config);

  int rejected = 0;
  for (auto& [k, b] : pinned) {
    auto res = client.get("/", key(k));
    if (b == "b1") {
      ++rejected;
      CHECK(res.status == 503);
      CHECK(res.header(kSessionMoved) == "b1");
      CHECK_FALSE(res.body.empty());
      auto next = client.get("/", key(k));
      CHECK(next.status == 200);
      CHECK(backendOf(next) == "b2");
      CHECK_FALSE(next.has(kSessionMoved));
    } else {
      CHECK(res.status == 200);
      CHECK(backendOf(res) == "b2");
    }
  }
  CHECK(rejected > 0);
  CHECK(client.connectionsOpened() == 1);  // a 503 Reject keeps the connection
}

TEST_CASE("a killed backend's sessions fail over to another endpoint with moved headers") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3");
  ProxyProc proxy(dir, configOf(1, {stickyRoute("shop/chat", {b1.endpoint(), b2.endpoint()})}));
  auto client = proxy.client();
  auto pinned = placeKeys(client, 20);
  b1.kill();

  bool saw_move = false;
  for (auto& [k, b] : pinned) {
    auto res = client.get("/", key(k));
    REQUIRE_MESSAGE(res.status == 200, res.status << " " << res.body);
    CHECK(backendOf(res) == "b2");
    if (b != "b1") continue;
    // The first one discovers the refused connection; the rest see b1 marked down. Either way
    // the session moves and both sides are told.
    CHECK(res.header(kSessionMoved) == "b1");
    CHECK(echoedHeader(res, kMovedFrom) == "b1");
    saw_move = true;
  }
  CHECK(saw_move);
}

TEST_CASE("a backend restarted on the same address keeps its sessions (no failover)") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3");
  ProxyProc proxy(dir, configOf(1, {stickyRoute("shop/chat", {b1.endpoint(), b2.endpoint()})}));
  auto client = proxy.client();
  auto pinned = placeKeys(client, 10);  // leaves pooled connections to both backends
  b1.kill();
  b1.restart();
  for (auto& [k, b] : pinned) {
    auto res = client.get("/", key(k));
    REQUIRE(res.status == 200);
    CHECK(backendOf(res) == b);
    CHECK_FALSE(res.has(kSessionMoved));
  }
}

TEST_CASE(
    "a pooled connection the upstream closes is retried on a fresh one to the same endpoint") {
  TempDir dir;
  // Answers the first request on a connection (keep-alive) and closes the connection when the
  // second one arrives, without answering: a backend's idle timeout racing a reused connection.
  ScriptedUpstream upstream("127.0.0.4", [](const std::string&, int, int request) {
    if (request > 0) return ScriptedUpstream::Reply{"", true};
    std::string body = "{\"backend\":\"closing\"}";
    return ScriptedUpstream::Reply{
        "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body};
  });
  BackendProc other(dir, "other", "127.0.0.3");
  EndpointConfig closing{"closing", "127.0.0.4", upstream.port()};
  ProxyProc proxy(dir, configOf(1, {stickyRoute("shop/chat", {closing, other.endpoint()})}));
  // One client connection stays on one worker, so its requests share that worker's pool.
  auto client = proxy.client();
  std::string k;
  for (int i = 0; i < 50 && k.empty(); ++i) {
    auto res = client.get("/", key("s" + std::to_string(i)));
    REQUIRE(res.status == 200);
    if (backendOf(res) == "closing") k = "s" + std::to_string(i);
  }
  REQUIRE_FALSE(k.empty());
  int requests = upstream.requests();
  int connections = upstream.connections();
  auto res = client.get("/", key(k));
  CHECK(res.status == 200);
  CHECK(backendOf(res) == "closing");  // same endpoint: not a failover
  CHECK_FALSE(res.has(kSessionMoved));
  CHECK(upstream.requests() == requests + 2);        // the dropped one and its retry
  CHECK(upstream.connections() == connections + 1);  // the retry on a fresh connection
}

TEST_CASE("no matching route answers 404 naming host and path - no endpoint answers 503") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2");
  auto chat = stickyRoute("shop/chat", {b1.endpoint()});
  chat.match.hosts = {"chat.example.com"};
  auto empty = stickyRoute("shop/empty", {});
  empty.match.hosts = {"empty.example.com"};
  ProxyProc proxy(dir, configOf(1, {chat, empty}));
  auto client = proxy.client();

  auto res = client.get("/x/y?z=1", {{"Host", "other.example.com:8080"}, {"client-id", "1"}});
  CHECK(res.status == 404);
  CHECK(res.body.find("no route matches host other.example.com path /x/y") != std::string::npos);

  res = client.get("/", {{"Host", "empty.example.com"}, {"client-id", "1"}});
  CHECK(res.status == 503);
  CHECK_FALSE(res.body.empty());

  res = client.get("/", {{"Host", "CHAT.example.com"}, {"client-id", "1"}});
  CHECK(res.status == 200);
  CHECK(backendOf(res) == "b1");
  CHECK(client.connectionsOpened() == 1);
}

}  // namespace
}  // namespace sticky::test
