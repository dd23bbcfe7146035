#include "routing/router.h"

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "routing/placement.h"

namespace sticky::proxy {
namespace {

using namespace std::chrono_literals;

const TimePoint kT0 = TimePoint{} + 1000h;

// Note: CHECK((a == b)) around enums, because doctest would stringify them with our ADL
// toString (which returns string_view) and fail to compile.

EndpointConfig endpoint(int i, EndpointState state = EndpointState::Active) {
  return {"chat-" + std::to_string(i), "127.0.0." + std::to_string(i + 2),
          static_cast<uint16_t>(8080 + i), state};
}

// Route shop/chat: header client-id, endpoints chat-0..chat-(n-1).
ProxyConfig config(int endpoints = 3) {
  ProxyConfig c;
  c.version = 1;
  c.limits.endpoint_down_period = 10s;
  RouteConfig r;
  r.name = "shop/chat";
  r.header = "Client-ID";  // any case; build() lower-cases it
  for (int i = 0; i < endpoints; ++i) r.endpoints.push_back(endpoint(i));
  c.routes.push_back(r);
  return c;
}

std::shared_ptr<const Router> build(ProxyConfig c, const Router* previous = nullptr) {
  auto r = Router::build(std::move(c), previous, kT0);
  if (!r) {
    for (const auto& e : r.error()) MESSAGE(e.toString());
  }
  REQUIRE(r.ok());
  return *r;
}

const Route& chat(const Router& router) {
  const Route* r = router.findRoute("shop/chat");
  REQUIRE(r != nullptr);
  return *r;
}

std::string key(int i) {
  return "client-" + std::to_string(i);
}

// Forwards `k` and returns the endpoint name (fails the test on a reject).
std::string land(const Route& route, const std::string& k, TimePoint now = kT0) {
  RouteDecision d = route.decide(k, now);
  REQUIRE((d.verdict == Verdict::Forward));
  REQUIRE(d.endpoint != nullptr);
  return d.endpoint->config().name;
}

TEST_CASE("build validates and exposes routes and endpoints") {
  ProxyConfig bad = config();
  bad.routes[0].endpoints[1].address = "not-an-ip";
  auto r = Router::build(bad, nullptr, kT0);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error()[0].path == "routes[0].endpoints[1].address");

  auto router = build(config());
  CHECK(router->config().version == 1);
  CHECK(router->routes().size() == 1);
  const Route& route = chat(*router);
  CHECK(route.config().header == "client-id");
  REQUIRE(route.endpoints().size() == 3);
  const Endpoint& e1 = route.endpoints()[1];
  CHECK(e1.address().address().to_string() == "127.0.0.3");
  CHECK(e1.address().port() == 8081);
  CHECK(e1.id() == endpointId(endpoint(1)));
  CHECK(route.findEndpoint(e1.id()) == &e1);
  CHECK(route.findEndpoint(std::string_view("chat-1")) == &e1);
  CHECK(route.findEndpoint(std::string_view("nope")) == nullptr);
  CHECK(route.endpointName(e1.id()) == "chat-1");
  CHECK(route.endpointName(12345).empty());
  CHECK(router->findRoute("shop/none") == nullptr);
}

TEST_CASE("route names split into namespace and stickyroute labels at the first slash") {
  CHECK(splitRouteName("shop/chat").ns == "shop");
  CHECK(splitRouteName("shop/chat").name == "chat");
  CHECK(splitRouteName("chat").ns.empty());
  CHECK(splitRouteName("chat").name == "chat");
  CHECK(splitRouteName("a/b/c").ns == "a");
  CHECK(splitRouteName("a/b/c").name == "b/c");
  CHECK(splitRouteName("/x").ns.empty());
  CHECK(splitRouteName("/x").name == "x");

  // Split once when the route is built; a rebuilt snapshot's labels view its own copy of the
  // name. (Validation accepts only "namespace/name" route names.)
  ProxyConfig c = config();
  RouteConfig other = c.routes[0];
  other.name = "billing-eu/chat-v2";
  other.match.path_prefix = "/v2";
  c.routes.push_back(other);
  auto router = build(c);
  auto rebuilt = Router::build(c, router.get(), kT0);
  REQUIRE(rebuilt.ok());
  router.reset();  // the labels must not point into the old snapshot
  const Route* shop = (*rebuilt)->findRoute("shop/chat");
  const Route* billing = (*rebuilt)->findRoute("billing-eu/chat-v2");
  REQUIRE(shop != nullptr);
  REQUIRE(billing != nullptr);
  CHECK(shop->labels().ns == "shop");
  CHECK(shop->labels().name == "chat");
  CHECK(billing->labels().ns == "billing-eu");
  CHECK(billing->labels().name == "chat-v2");
}

TEST_CASE("a key is placed once and then sticks") {
  auto router = build(config());
  const Route& route = chat(*router);
  RouteDecision first = route.decide("42", kT0);
  REQUIRE((first.verdict == Verdict::Forward));
  CHECK(first.pinned);
  CHECK(first.moved_from.empty());
  for (int i = 0; i < 5; ++i) {
    RouteDecision again = route.decide("42", kT0 + std::chrono::seconds(i));
    CHECK(again.endpoint == first.endpoint);
    CHECK(again.pinned);
  }
  CHECK(route.stats().requests == 6);
  CHECK(route.stats().placements == 1);
  CHECK(route.table().size() == 1);
  CHECK(route.table().sessionsOf(first.endpoint->id()) == 1);
  CHECK(first.endpoint->stats().requests == 6);
  // LeastSessions: the next two keys go to the two empty endpoints.
  std::set<std::string> names{first.endpoint->config().name, land(route, "43"), land(route, "44")};
  CHECK(names.size() == 3);
}

TEST_CASE("missing key: Balance spreads without a session, Reject answers 400") {
  auto router = build(config());
  const Route& route = chat(*router);
  std::map<std::string, int> spread;
  for (int i = 0; i < 30; ++i) {
    RouteDecision d = route.decide(std::nullopt, kT0);
    REQUIRE((d.verdict == Verdict::Forward));
    CHECK_FALSE(d.pinned);
    ++spread[d.endpoint->config().name];
  }
  CHECK(spread.size() == 3);
  for (auto& [name, n] : spread) CHECK(n == 10);
  CHECK(route.table().size() == 0);
  CHECK(route.stats().placements == 0);

  ProxyConfig c = config();
  c.routes[0].on_missing_key = OnMissingKey::Reject;
  auto strict = build(c);
  RouteDecision d = chat(*strict).decide(std::nullopt, kT0);
  CHECK((d.verdict == Verdict::Reject));
  CHECK(d.status == 400);
  CHECK(d.reason.find("\"client-id\"") != std::string_view::npos);
  CHECK(chat(*strict).stats().rejected_missing_key == 1);
}

TEST_CASE("a draining endpoint keeps its sessions and gets no new ones") {
  auto router = build(config());
  std::map<std::string, std::string> pinned;
  for (int i = 0; i < 30; ++i) pinned[key(i)] = land(chat(*router), key(i));
  ProxyConfig c = config();
  c.routes[0].endpoints[1].state = EndpointState::Draining;
  auto next = build(c, router.get());
  const Route& route = chat(*next);
  for (auto& [k, name] : pinned) {
    RouteDecision d = route.decide(k, kT0 + 1s);
    CHECK(d.endpoint->config().name == name);
    CHECK(d.moved_from.empty());
  }
  for (int i = 100; i < 400; ++i) CHECK(land(route, key(i), kT0 + 1s) != "chat-1");
  CHECK(route.table().sessionsOf(route.findEndpoint(std::string_view("chat-1"))->id()) == 10);
  CHECK(route.stats().moves == 0);
}

TEST_CASE("endpoint removed, Reassign: the session moves once and names its old endpoint") {
  auto router = build(config());
  std::map<std::string, std::string> pinned;
  for (int i = 0; i < 30; ++i) pinned[key(i)] = land(chat(*router), key(i));
  const EndpointId gone = chat(*router).findEndpoint(std::string_view("chat-1"))->id();

  ProxyConfig c = config();
  c.routes[0].endpoints.erase(c.routes[0].endpoints.begin() + 1);
  auto next = build(c, router.get());
  const Route& route = chat(*next);
  CHECK(route.endpointName(gone) == "chat-1");  // departed, still referenced by sessions
  int moved = 0;
  for (auto& [k, name] : pinned) {
    RouteDecision d = route.decide(k, kT0 + 1s);
    REQUIRE((d.verdict == Verdict::Forward));
    CHECK(d.pinned);
    if (name == "chat-1") {
      ++moved;
      CHECK(d.moved_from == "chat-1");
      CHECK(d.endpoint->config().name != "chat-1");
      // The next request of the moved session stays on its new endpoint, without the header.
      RouteDecision again = route.decide(k, kT0 + 2s);
      CHECK(again.endpoint == d.endpoint);
      CHECK(again.moved_from.empty());
    } else {
      CHECK(d.endpoint->config().name == name);
      CHECK(d.moved_from.empty());
    }
  }
  CHECK(moved == 10);
  CHECK(route.stats().moves == 10);
  CHECK(route.table().sessionsOf(gone) == 0);
  CHECK(route.table().size() == 30);
  // With no session left on it, the next build forgets the departed name.
  auto later = build(c, next.get());
  CHECK(chat(*later).endpointName(gone).empty());
}

TEST_CASE("endpoint removed, Reject: 503 naming the old endpoint, then a new session") {
  ProxyConfig c = config();
  c.routes[0].on_endpoint_lost = OnEndpointLost::Reject;
  auto router = build(c);
  std::string k;
  for (int i = 0; k.empty(); ++i) {
    if (land(chat(*router), key(i)) == "chat-2") k = key(i);
  }
  c.routes[0].endpoints.pop_back();  // chat-2 leaves
  auto next = build(c, router.get());
  const Route& route = chat(*next);
  RouteDecision d = route.decide(k, kT0 + 1s);
  CHECK((d.verdict == Verdict::Reject));
  CHECK(d.status == 503);
  CHECK(d.moved_from == "chat-2");
  CHECK(d.reason.find("retry") != std::string_view::npos);
  CHECK_FALSE(d.pinned);
  CHECK(route.stats().moves == 1);
  RouteDecision fresh = route.decide(k, kT0 + 2s);
  REQUIRE((fresh.verdict == Verdict::Forward));
  CHECK(fresh.moved_from.empty());
  CHECK(fresh.pinned);
  CHECK(fresh.endpoint->config().name != "chat-2");
  CHECK(route.stats().moves == 1);
}

TEST_CASE("no active endpoint: 503 naming the route") {
  ProxyConfig c = config(2);
  for (auto& e : c.routes[0].endpoints) e.state = EndpointState::Draining;
  auto router = build(c);
  RouteDecision d = chat(*router).decide("new-key", kT0);
  CHECK((d.verdict == Verdict::Reject));
  CHECK(d.status == 503);
  CHECK(d.reason == "route shop/chat has no active endpoint");
  CHECK(chat(*router).stats().no_endpoint == 1);
  CHECK(chat(*router).table().size() == 0);
  RouteDecision unpinned = chat(*router).decide(std::nullopt, kT0);
  CHECK(unpinned.status == 503);

  auto empty = build(config(0));
  CHECK(chat(*empty).decide("k", kT0).reason == "route shop/chat has no active endpoint");
}

TEST_CASE("failover marks the endpoint down and moves the session") {
  auto router = build(config());
  const Route& route = chat(*router);
  RouteDecision d = route.decide("42", kT0);
  const Endpoint& failed = *d.endpoint;
  RouteDecision next = route.failover(std::string_view("42"), failed, kT0);
  REQUIRE((next.verdict == Verdict::Forward));
  CHECK(next.endpoint != &failed);
  CHECK(next.moved_from == failed.config().name);
  CHECK(next.pinned);
  CHECK(failed.isDown(kT0));
  CHECK(failed.isDown(kT0 + 9s));
  CHECK_FALSE(failed.isDown(kT0 + 10s));
  CHECK(failed.stats().connect_failures == 1);
  CHECK(route.stats().moves == 1);
  // The session now lives on the new endpoint, also after the old one is up again.
  CHECK(route.decide("42", kT0 + 1s).endpoint == next.endpoint);
  CHECK(route.decide("42", kT0 + 1min).endpoint == next.endpoint);
  // While it is down, no new key lands on it.
  RouteDecision again = route.decide("43", kT0 + 1s);
  again = route.failover(std::string_view("43"), *again.endpoint, kT0 + 1s);  // a 2nd one down
  for (int i = 0; i < 20; ++i) {
    auto name = land(route, key(i), kT0 + 2s);
    CHECK(name != failed.config().name);
    CHECK(name != again.moved_from);
  }
  // Unpinned requests just go elsewhere, without moved headers.
  RouteDecision u = route.decide(std::nullopt, kT0 + 2s);
  RouteDecision uf = route.failover(std::nullopt, *u.endpoint, kT0 + 2s);
  CHECK(uf.moved_from.empty());
  CHECK_FALSE(uf.pinned);
}

TEST_CASE(
    "failover with Reject answers 503 with the moved header; a down endpoint's sessions "
    "follow onEndpointLost on their next request") {
  ProxyConfig c = config();
  c.routes[0].on_endpoint_lost = OnEndpointLost::Reject;
  auto router = build(c);
  const Route& route = chat(*router);
  RouteDecision d = route.decide("42", kT0);
  RouteDecision f = route.failover(std::string_view("42"), *d.endpoint, kT0);
  CHECK((f.verdict == Verdict::Reject));
  CHECK(f.status == 503);
  CHECK(f.moved_from == d.endpoint->config().name);

  auto reassign = build(config());
  const Route& r2 = chat(*reassign);
  RouteDecision p = r2.decide("7", kT0);
  p.endpoint->markDown(kT0 + 5s);
  RouteDecision moved = r2.decide("7", kT0 + 1s);
  CHECK(moved.moved_from == p.endpoint->config().name);
  CHECK(moved.endpoint != p.endpoint);
}

TEST_CASE("Reassign with nowhere to go keeps the session for when its endpoint is back") {
  auto router = build(config(1));
  const Route& route = chat(*router);
  RouteDecision d = route.decide("42", kT0);
  RouteDecision f = route.failover(std::string_view("42"), *d.endpoint, kT0);
  CHECK((f.verdict == Verdict::Reject));
  CHECK(f.status == 503);
  CHECK(f.reason == "route shop/chat has no active endpoint");
  CHECK(f.moved_from.empty());  // kept, not moved: no moved header
  CHECK(route.table().size() == 1);
  RouteDecision back = route.decide("42", kT0 + 11s);  // down period over
  CHECK(back.endpoint == d.endpoint);
  CHECK(back.moved_from.empty());
  CHECK(route.stats().moves == 0);
}

TEST_CASE("a config swap keeps sessions, tables, stats and down-marks") {
  auto router = build(config());
  std::map<std::string, std::string> pinned;
  for (int i = 0; i < 300; ++i) pinned[key(i)] = land(chat(*router), key(i));
  const Route& old_route = chat(*router);
  old_route.endpoints()[2].markDown(kT0 + 1h);
  old_route.recordResponse(old_route.endpoints()[0], 200, 3ms);

  ProxyConfig c = config(4);  // one more endpoint
  c.version = 2;
  c.routes[0].ttl = 10min;
  RouteConfig other;
  other.name = "shop/cart";
  other.header = "cart";
  other.match.path_prefix = "/cart";
  c.routes.push_back(other);
  auto next = build(c, router.get());
  const Route& route = chat(*next);
  CHECK(&route.table() == &old_route.table());
  CHECK(&route.stats() == &old_route.stats());
  CHECK(&route.endpoints()[0].stats() == &old_route.endpoints()[0].stats());
  CHECK(route.endpoints()[0].stats().responses.get(1) == 1);
  CHECK(route.endpoints()[2].isDown(kT0 + 1s));
  CHECK(route.stats().requests == 300);
  for (auto& [k, name] : pinned) {
    if (name == "chat-2") continue;  // down: those move
    RouteDecision d = route.decide(k, kT0 + 1s);
    CHECK(d.endpoint->config().name == name);
    CHECK(d.moved_from.empty());
  }
  CHECK(route.stats().placements == 300);
  // The new TTL applies to the carried table.
  CHECK(route.table().find(key(0), kT0 + 1s + 10min) == std::nullopt);
  // A lower cap evicts at once.
  c.routes[0].max_sessions = 50;
  auto capped = build(c, next.get());
  CHECK(chat(*capped).table().size() == 50);
  // A route that leaves and comes back starts with a fresh table.
  auto without = build(ProxyConfig{}, capped.get());
  CHECK(without->routes().empty());
  auto back = build(config(), without.get());
  CHECK(chat(*back).table().size() == 0);
  CHECK(chat(*back).stats().requests == 0);
}

TEST_CASE("concurrent requests of one moved session agree on its new endpoint") {
  auto router = build(config(4));
  const Route& first = chat(*router);
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 50; ++i) {
    if (land(first, key(i)) == "chat-0") keys.push_back(key(i));
  }
  ProxyConfig c = config(4);
  c.routes[0].endpoints.erase(c.routes[0].endpoints.begin());
  auto next = build(c, router.get());
  const Route& route = chat(*next);
  constexpr int kThreads = 4;
  std::vector<std::vector<const Endpoint*>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const auto& k : keys) seen[t].push_back(route.decide(k, kT0 + 1s).endpoint);
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < keys.size(); ++i) {
    for (int t = 1; t < kThreads; ++t) CHECK(seen[t][i] == seen[0][i]);
    CHECK(seen[0][i]->config().name != "chat-0");
  }
  CHECK(route.stats().moves == keys.size());
}

TEST_CASE("router matching and sweeping") {
  ProxyConfig c = config();
  c.routes[0].match.hosts = {"chat.example.com"};
  RouteConfig api = c.routes[0];
  api.name = "shop/api";
  api.match.hosts = {};
  api.match.path_prefix = "/api";
  c.routes.push_back(api);
  auto router = build(c);
  CHECK(router->match("CHAT.example.com", "/x")->config().name == "shop/chat");
  CHECK(router->match("chat.example.com", "/api/x")->config().name == "shop/api");
  CHECK(router->match("other", "/api")->config().name == "shop/api");
  CHECK(router->match("other", "/x") == nullptr);

  const Route& route = chat(*router);
  for (int i = 0; i < 10; ++i) land(route, key(i), kT0);
  land(*router->findRoute("shop/api"), "a", kT0 + 20min);
  CHECK(router->sweep(kT0 + 30min) == 10);
  CHECK(router->sweep(kT0 + 1h) == 1);
}

TEST_CASE("recordResponse fills status classes and the latency histogram") {
  auto router = build(config());
  const Route& route = chat(*router);
  const Endpoint& e = route.endpoints()[0];
  route.recordResponse(e, 200, 400us);  // <= 0.0005
  route.recordResponse(e, 204, 1ms);    // <= 0.001 (inclusive bound)
  route.recordResponse(e, 503, 20s);    // +Inf
  route.recordResponse(e, 101, 30ms);   // <= 0.05
  CHECK(e.stats().responses.get(0) == 1);
  CHECK(e.stats().responses.get(1) == 2);
  CHECK(e.stats().responses.get(4) == 1);
  const RouteStats& s = route.stats();
  CHECK(s.latency_buckets[0] == 1);
  CHECK(s.latency_buckets[1] == 1);
  CHECK(s.latency_buckets[6] == 1);
  CHECK(s.latency_buckets[kLatencyBuckets.size()] == 1);
  CHECK(s.latency_count == 4);
  CHECK(s.latency_sum_us == 400 + 1000 + 20000000 + 30000);
}

TEST_CASE("RouterHolder swaps snapshots and keeps the last good one") {
  RouterHolder holder;
  CHECK_FALSE(holder.loaded());
  CHECK(holder.current() == nullptr);
  REQUIRE(holder.apply(config(), kT0).ok());
  CHECK(holder.generation() == 1);
  auto first = holder.current();
  land(chat(*first), "42");
  ProxyConfig bad = config();
  bad.routes[0].header = "bad header";
  auto rejected = holder.apply(bad, kT0);
  REQUIRE_FALSE(rejected.ok());
  CHECK(rejected.error()[0].path == "routes[0].header");
  CHECK(holder.generation() == 1);
  CHECK(holder.current() == first);
  ProxyConfig c = config();
  c.version = 2;
  REQUIRE(holder.apply(c, kT0).ok());
  CHECK(holder.generation() == 2);
  auto second = holder.current();
  CHECK(second->config().version == 2);
  CHECK(chat(*second).table().size() == 1);  // carried from the first snapshot
  // The old snapshot stays valid for whoever still holds it.
  CHECK(land(chat(*first), "42") == land(chat(*second), "42"));
}

}  // namespace
}  // namespace sticky::proxy
