// Route with a shared store: a miss becomes a Claim, settle() pins the store's answer, moves and
// evictions are told to the store. The store here is a recorder (the Redis one is tested with
// a real redis-server in test/integration/proxy/shared_table_test.cc).
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "routing/placement.h"
#include "routing/router.h"

namespace sticky::proxy {
namespace {

using namespace std::chrono_literals;

const TimePoint kT0 = TimePoint{} + 1000h;

class RecordingStore final : public SessionStore {
 public:
  struct Move {
    std::string route, key;
    EndpointId from, to;
  };
  void claim(std::string_view, std::string_view, EndpointId candidate, std::chrono::milliseconds,
             ClaimDone done) override {
    claims.push_back(candidate);
    done(ClaimResult{candidate, ClaimResult::Source::Placed});
  }
  void moved(std::string_view route, std::string_view key, EndpointId from, EndpointId to,
             std::chrono::milliseconds) override {
    moves.push_back({std::string(route), std::string(key), from, to});
  }
  void erased(std::string_view, std::string_view key) override { erased_keys.emplace_back(key); }
  void erasedEndpoint(std::string_view, EndpointId endpoint) override {
    erased_endpoints.push_back(endpoint);
  }
  std::shared_ptr<const SessionCensus> census() override { return nullptr; }
  std::vector<EndpointId> claims;
  std::vector<Move> moves;
  std::vector<std::string> erased_keys;
  std::vector<EndpointId> erased_endpoints;
};

ProxyConfig config(OnEndpointLost lost = OnEndpointLost::Reassign) {
  ProxyConfig c;
  c.version = 1;
  RouteConfig r;
  r.name = "shop/chat";
  r.header = "client-id";
  r.on_endpoint_lost = lost;
  for (int i = 0; i < 3; ++i) {
    r.endpoints.push_back({"chat-" + std::to_string(i), "127.0.0." + std::to_string(i + 2),
                           static_cast<uint16_t>(8080 + i), EndpointState::Active});
  }
  c.routes.push_back(r);
  return c;
}

std::shared_ptr<const Router> build(ProxyConfig c, SessionStore& store,
                                    const Router* previous = nullptr) {
  auto r = Router::build(std::move(c), previous, kT0, &store);
  REQUIRE(r.ok());
  return *r;
}

TEST_CASE("shared route - a miss is a Claim - the store's answer is pinned, then hits stay local") {
  RecordingStore store;
  auto router = build(config(), store);
  const Route& route = *router->findRoute("shop/chat");

  RouteDecision first = route.decide("alice", kT0);
  REQUIRE((first.verdict == Verdict::Claim));
  CHECK(first.candidate != 0);
  CHECK(route.findEndpoint(first.candidate) != nullptr);

  // The store says another replica placed alice on chat-2: adopted, counted, pinned.
  const Endpoint* chat2 = route.findEndpoint(std::string_view("chat-2"));
  RouteDecision settled =
      route.settle("alice", first.candidate, {chat2->id(), ClaimResult::Source::Adopted}, kT0);
  REQUIRE((settled.verdict == Verdict::Forward));
  CHECK(settled.endpoint == chat2);
  CHECK(route.sharedStats().adopted.load() == 1);
  CHECK(route.stats().placements.load() == 0);

  RouteDecision hit = route.decide("alice", kT0 + 1s);
  REQUIRE((hit.verdict == Verdict::Forward));
  CHECK(hit.endpoint == chat2);
  CHECK(store.claims.empty());  // decide never asks the store itself; RoutingStep does
}

TEST_CASE("shared route - store unavailable - the candidate is pinned and due for a refresh") {
  RecordingStore store;
  auto router = build(config(), store);
  const Route& route = *router->findRoute("shop/chat");
  RouteDecision first = route.decide("bob", kT0);
  REQUIRE((first.verdict == Verdict::Claim));
  RouteDecision settled = route.settle("bob", first.candidate,
                                       {first.candidate, ClaimResult::Source::Unavailable}, kT0);
  REQUIRE((settled.verdict == Verdict::Forward));
  CHECK(settled.endpoint->id() == first.candidate);
  CHECK(route.sharedStats().unavailable.load() == 1);
  CHECK(route.stats().placements.load() == 1);
  // Unsynced: handed to the refresh round at once, whatever min_age says.
  auto due = route.table().takeRefreshes(kT0 + 10ms, 1h, 100);
  REQUIRE(due.size() == 1);
  CHECK(due[0].key == "bob");
  CHECK(route.table().takeRefreshes(kT0 + 20ms, 1h, 100).empty());
}

TEST_CASE("shared route - an adopted endpoint that left the config moves, and the store is told") {
  RecordingStore store;
  auto router = build(config(), store);
  const Route& route = *router->findRoute("shop/chat");
  RouteDecision first = route.decide("carol", kT0);
  // Redis says carol is on an endpoint this replica's config does not have (a pod gone).
  const EndpointId gone = endpointId("chat-9", "127.0.0.99", 9999);
  RouteDecision settled =
      route.settle("carol", first.candidate, {gone, ClaimResult::Source::Adopted}, kT0);
  REQUIRE((settled.verdict == Verdict::Forward));
  REQUIRE(store.moves.size() == 1);
  CHECK(store.moves[0].key == "carol");
  CHECK(store.moves[0].from == gone);
  CHECK(store.moves[0].to == settled.endpoint->id());
  CHECK(route.stats().moves.load() == 1);
}

TEST_CASE("shared route - a failover move and a Reject drop are told to the store") {
  RecordingStore store;
  auto router = build(config(), store);
  const Route& route = *router->findRoute("shop/chat");
  RouteDecision first = route.decide("dave", kT0);
  RouteDecision placed =
      route.settle("dave", first.candidate, {first.candidate, ClaimResult::Source::Placed}, kT0);
  REQUIRE(placed.endpoint != nullptr);
  RouteDecision failed_over = route.failover("dave", *placed.endpoint, kT0);
  REQUIRE((failed_over.verdict == Verdict::Forward));
  REQUIRE(store.moves.size() == 1);
  CHECK(store.moves[0].from == placed.endpoint->id());
  CHECK(store.moves[0].to == failed_over.endpoint->id());

  RecordingStore reject_store;
  auto rejecting = build(config(OnEndpointLost::Reject), reject_store);
  const Route& strict = *rejecting->findRoute("shop/chat");
  RouteDecision d = strict.decide("erin", kT0);
  RouteDecision p =
      strict.settle("erin", d.candidate, {d.candidate, ClaimResult::Source::Placed}, kT0);
  RouteDecision lost = strict.failover("erin", *p.endpoint, kT0);
  CHECK((lost.verdict == Verdict::Reject));
  REQUIRE(reject_store.moves.size() == 1);
  CHECK(reject_store.moves[0].to == 0);
}

TEST_CASE("shared route - admin evictions reach the store") {
  RecordingStore store;
  auto router = build(config(), store);
  const Route& route = *router->findRoute("shop/chat");
  RouteDecision d = route.decide("frank", kT0);
  route.settle("frank", d.candidate, {d.candidate, ClaimResult::Source::Placed}, kT0);
  CHECK(route.evict("frank"));
  CHECK(!route.evict("frank"));
  CHECK(store.erased_keys == std::vector<std::string>{"frank", "frank"});
  CHECK(route.evictEndpoint(d.candidate) == 0);
  CHECK(store.erased_endpoints == std::vector<EndpointId>{d.candidate});
}

TEST_CASE("shared route - LeastSessions adds the peer load while it is fresh, then goes own") {
  RecordingStore store;
  auto router = build(config(), store);
  const Route& route = *router->findRoute("shop/chat");
  auto id = [&](const char* name) { return route.findEndpoint(std::string_view(name))->id(); };
  // Another replica holds 6 sessions on chat-0 and chat-1 each, none on chat-2.
  route.setPeerLoad({{id("chat-0"), 6}, {id("chat-1"), 6}}, 1, kT0 + 3s);
  CHECK(route.peerReplicas(kT0 + 1s) == 1);
  auto place = [&](const std::string& key, TimePoint now) {
    RouteDecision d = route.decide(key, now);
    REQUIRE((d.verdict == Verdict::Claim));
    route.settle(key, d.candidate, {d.candidate, ClaimResult::Source::Placed}, now);
    return d.candidate;
  };
  for (int i = 0; i < 6; ++i) CHECK(place("k" + std::to_string(i), kT0 + 1s) == id("chat-2"));
  // All at 6: the next keys spread over the three.
  std::map<EndpointId, int> spread;
  for (int i = 6; i < 12; ++i) spread[place("k" + std::to_string(i), kT0 + 1s)]++;
  CHECK(spread.size() == 3);

  // A new snapshot (a config change) keeps the route's peer load.
  ProxyConfig next = config();
  next.version = 2;
  auto router2 = build(next, store, router.get());
  CHECK(router2->findRoute("shop/chat")->peerReplicas(kT0 + 1s) == 1);

  // Stale (no round since 3 s): own counts only. chat-2 holds 8 here, the others 2 each.
  CHECK(route.peerReplicas(kT0 + 3s) == 0);
  for (int i = 12; i < 24; ++i) CHECK(place("k" + std::to_string(i), kT0 + 3s) != id("chat-2"));
}

TEST_CASE("shared route - the peer load is for LeastSessions with a store only") {
  RecordingStore store;
  ProxyConfig hashed = config();
  hashed.routes[0].placement = Placement::ConsistentHash;
  auto router = build(hashed, store);
  const Route& route = *router->findRoute("shop/chat");
  std::vector<EndpointId> ids;
  for (const Endpoint& e : route.endpoints()) ids.push_back(e.id());
  route.setPeerLoad({{ids[0], 1000}, {ids[1], 1000}, {ids[2], 1000}}, 2, kT0 + 3s);
  for (int i = 0; i < 20; ++i) {
    const std::string key = "h" + std::to_string(i);
    CHECK(route.decide(key, kT0).candidate == pickRendezvous(hashKey(key), ids));
  }

  // No store: a local table; whatever setPeerLoad is given, placement is on own counts.
  auto local = Router::build(config(), nullptr, kT0);
  REQUIRE(local.ok());
  const Route& plain = *(*local)->findRoute("shop/chat");
  const EndpointId first = plain.endpoints()[0].id();
  plain.setPeerLoad({{first, 1000}}, 1, kT0 + 3s);
  std::map<EndpointId, int> spread;
  for (int i = 0; i < 30; ++i) spread[plain.decide("p" + std::to_string(i), kT0).endpoint->id()]++;
  CHECK(spread[first] == 10);
}

TEST_CASE("stick table - takeRefreshes hands out entries used since confirmed, once per min_age") {
  auto table = makeLocalStickTable(std::chrono::minutes(30), 1000);
  table->pin("a", 1, kT0);
  table->pin("b", 2, kT0);
  // Just pinned: confirmed now, nothing due.
  CHECK(table->takeRefreshes(kT0 + 1s, 10s, 100).empty());
  CHECK(table->find("a", kT0 + 2s));
  // Used, but confirmed less than min_age ago.
  CHECK(table->takeRefreshes(kT0 + 3s, 10s, 100).empty());
  auto due = table->takeRefreshes(kT0 + 11s, 10s, 100);
  REQUIRE(due.size() == 1);
  CHECK(due[0].key == "a");
  CHECK(due[0].endpoint == 1);
  // Handed out: confirmed again, not due until used again.
  CHECK(table->takeRefreshes(kT0 + 30s, 10s, 100).empty());
  // The limit holds.
  for (int i = 0; i < 10; ++i) {
    table->pin("k" + std::to_string(i), 3, kT0 + 31s);
    table->markUnsynced("k" + std::to_string(i));
  }
  CHECK(table->takeRefreshes(kT0 + 32s, 10s, 4).size() == 4);
  CHECK(table->takeRefreshes(kT0 + 32s, 10s, 100).size() == 6);
}

std::set<std::string> keysOf(const std::vector<SessionEntry>& entries) {
  std::set<std::string> keys;
  for (const SessionEntry& e : entries) keys.insert(e.key);
  return keys;
}

TEST_CASE(
    "stick table - a used entry erased, evicted or expired before its refresh is never handed "
    "out") {
  // One shard, at most 3 entries, 20 s idle timeout.
  auto table = makeLocalStickTable(std::chrono::seconds(20), 3, 1);
  CHECK(table->takeRefreshes(kT0, 10s, 100).empty());  // the refresh rounds have begun
  for (const char* k : {"a", "b", "c"}) table->pin(k, 1, kT0);
  for (const char* k : {"a", "b", "c"}) CHECK(table->find(k, kT0 + 1s));  // all owe a refresh
  table->pin("d", 2, kT0 + 2s);  // over the cap: "a", the least recently used, is evicted
  CHECK(!table->find("a", kT0 + 2s));
  CHECK(table->erase("b"));
  CHECK(keysOf(table->takeRefreshes(kT0 + 15s, 10s, 100)) == std::set<std::string>{"c"});
  // Used again, then idle past the timeout: expired, not refreshed, and swept.
  CHECK(table->find("c", kT0 + 16s));
  CHECK(table->takeRefreshes(kT0 + 40s, 10s, 100).empty());
  CHECK(table->sweep(kT0 + 40s) == 2);  // "c" and "d"
  CHECK(table->takeRefreshes(kT0 + 41s, 10s, 100).empty());
  // A key of the same name placed afterwards starts confirmed.
  table->pin("c", 3, kT0 + 42s);
  CHECK(table->takeRefreshes(kT0 + 60s, 10s, 100).empty());
}

TEST_CASE("stick table - entries used before the first refresh round are still refreshed") {
  auto table = makeLocalStickTable(std::chrono::minutes(30), 1000);
  table->pin("used", 1, kT0);
  table->pin("placed-only", 2, kT0);
  CHECK(table->find("used", kT0 + 2s));
  // The first round finds "used" by walking the recent entries; "placed-only" owes nothing.
  CHECK(table->takeRefreshes(kT0 + 3s, 10s, 100).empty());
  CHECK(keysOf(table->takeRefreshes(kT0 + 11s, 10s, 100)) == std::set<std::string>{"used"});
}

TEST_CASE("stick table - markAllUnsynced makes recently used entries due at once, not older ones") {
  auto table = makeLocalStickTable(std::chrono::minutes(30), 1000);
  CHECK(table->takeRefreshes(kT0, 10s, 100).empty());
  table->pin("old", 1, kT0);
  table->pin("recent", 2, kT0 + 100s);
  // Recent: used within min_age (10 s) + two rounds of now.
  table->markAllUnsynced(kT0 + 101s, 10s);
  CHECK(keysOf(table->takeRefreshes(kT0 + 101s, 10s, 100)) == std::set<std::string>{"recent"});
  CHECK(table->takeRefreshes(kT0 + 102s, 10s, 100).empty());
}

TEST_CASE("stick table - counts the entries the store has not confirmed, until handed out") {
  // One shard, at most 4 entries, 20 s idle timeout.
  auto table = makeLocalStickTable(std::chrono::seconds(20), 4, 1);
  auto unsynced = [&] { return table->counters().unsynced; };
  for (const char* k : {"a", "b", "c", "d"}) table->pin(k, 1, kT0);
  CHECK(unsynced() == 0);  // pinned: confirmed
  table->markUnsynced("a");
  table->markUnsynced("a");  // once per entry
  table->markUnsynced("b");
  table->markUnsynced("c");
  table->markUnsynced("absent");
  CHECK(unsynced() == 3);
  // Gone before a round took them: erased, evicted (over the cap: "d" is the oldest).
  CHECK(table->erase("b"));
  CHECK(unsynced() == 2);
  CHECK(table->find("a", kT0 + 1s));
  CHECK(table->find("c", kT0 + 1s));
  table->pin("e", 2, kT0 + 1s);
  table->pin("f", 2, kT0 + 1s);  // evicts "d" (confirmed): the count stays
  CHECK(unsynced() == 2);
  // Confirmed by the store (pin of an existing key) or handed out by a round.
  table->pin("c", 1, kT0 + 2s);
  CHECK(unsynced() == 1);
  CHECK(keysOf(table->takeRefreshes(kT0 + 3s, 10s, 100)) == std::set<std::string>{"a"});
  CHECK(unsynced() == 0);
  // All recent entries after a missed event stream; expired ones leave the count when swept.
  table->markAllUnsynced(kT0 + 4s, 10s);
  CHECK(unsynced() == 4);  // a, c, e, f
  CHECK(table->find("a", kT0 + 15s));
  CHECK(table->sweep(kT0 + 30s) == 3);  // c, e, f idle past 20 s
  CHECK(unsynced() == 1);
  CHECK(table->takeRefreshes(kT0 + 31s, 10s, 100).size() == 1);
  CHECK(unsynced() == 0);
}

}  // namespace
}  // namespace sticky::proxy
