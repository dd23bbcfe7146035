#include "routing/stick_table.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

namespace sticky::proxy {
namespace {

using namespace std::chrono_literals;

const TimePoint kT0 = TimePoint{} + 1000h;

// Sanitizers replace malloc, so mallinfo2() says nothing about our heap under them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kMallocReplaced = true;
#else
constexpr bool kMallocReplaced = false;
#endif

// Places every key on one fixed endpoint (or none), counting calls.
class FixedPlacement : public PlacementFn {
 public:
  explicit FixedPlacement(std::optional<EndpointId> id) : id_(id) {}
  std::optional<EndpointId> place(std::string_view) const override {
    ++calls;
    return id_;
  }
  mutable std::atomic<int> calls{0};

 private:
  std::optional<EndpointId> id_;
};

std::string key(int i) {
  return "client-" + std::to_string(100000 + i);
}

std::set<std::string> keysOf(const StickTable& t, TimePoint now) {
  std::set<std::string> out;
  for (const auto& e : t.dump(SIZE_MAX, now)) out.insert(e.key);
  return out;
}

TEST_CASE("lookupOrPlace pins a new key once and then returns the pin") {
  auto t = makeLocalStickTable(30min, 100);
  FixedPlacement to7(7), to9(9);
  auto first = t->lookupOrPlace("a", kT0, to7);
  REQUIRE(first);
  CHECK(first->endpoint == 7);
  CHECK(first->placed);
  auto second = t->lookupOrPlace("a", kT0 + 1s, to9);
  REQUIRE(second);
  CHECK(second->endpoint == 7);
  CHECK_FALSE(second->placed);
  CHECK(to9.calls == 0);
  CHECK(t->find("a", kT0 + 2s) == std::optional<EndpointId>(7));
  CHECK_FALSE(t->find("b", kT0 + 2s));
  CHECK(t->size() == 1);
  // No endpoint to place on: nothing is created.
  FixedPlacement none(std::nullopt);
  CHECK_FALSE(t->lookupOrPlace("b", kT0, none));
  CHECK(t->size() == 1);
}

TEST_CASE("the idle TTL is refreshed by every hit - expired entries are never returned") {
  auto t = makeLocalStickTable(10min, 100);
  FixedPlacement to1(1), to2(2);
  REQUIRE(t->lookupOrPlace("k", kT0, to1));
  // Hits just before the TTL keep it alive well past the first TTL.
  CHECK(t->find("k", kT0 + 9min) == std::optional<EndpointId>(1));
  CHECK(t->lookupOrPlace("k", kT0 + 18min, to2)->endpoint == 1);
  CHECK(t->find("k", kT0 + 27min) == std::optional<EndpointId>(1));
  CHECK(t->counters().expirations == 0);
  // Idle for exactly the TTL: expired, dropped on lookup.
  CHECK_FALSE(t->find("k", kT0 + 37min));
  CHECK(t->size() == 0);
  CHECK(t->sessionsOf(1) == 0);
  CHECK(t->counters().expirations == 1);
  // A new lookup after expiry places again.
  auto again = t->lookupOrPlace("k", kT0 + 38min, to2);
  CHECK(again->endpoint == 2);
  CHECK(again->placed);
  CHECK(t->lookupOrPlace("k", kT0 + 48min, to1)->placed);  // expired again -> placed on 1
  CHECK(t->counters().expirations == 2);
  // dump() shows idle time and hides expired entries.
  auto d = t->dump(10, kT0 + 50min);
  REQUIRE(d.size() == 1);
  CHECK(d[0].key == "k");
  CHECK(d[0].endpoint == 1);
  CHECK(d[0].idle == 2min);
  CHECK(t->dump(10, kT0 + 58min).empty());
}

TEST_CASE("sweep drops exactly the expired entries and keeps counters exact") {
  auto t = makeLocalStickTable(10min, 1000);
  FixedPlacement to1(1), to2(2);
  for (int i = 0; i < 100; ++i) {
    REQUIRE(t->lookupOrPlace(key(i), kT0 + std::chrono::seconds(i), i % 2 ? to1 : to2));
  }
  CHECK(t->sessionsOf(1) == 50);
  CHECK(t->sessionsOf(2) == 50);
  // Keys 0..39 were last used at kT0+0s..39s: idle >= 10min at kT0+10min+39s.
  CHECK(t->sweep(kT0 + 10min + 39s) == 40);
  CHECK(t->size() == 60);
  CHECK(t->sessionsOf(1) == 30);
  CHECK(t->sessionsOf(2) == 30);
  CHECK(t->counters().expirations == 40);
  CHECK(t->sweep(kT0 + 10min + 39s) == 0);
  auto keys = keysOf(*t, kT0 + 10min + 39s);
  CHECK(keys.size() == 60);
  CHECK(keys.count(key(39)) == 0);
  CHECK(keys.count(key(40)) == 1);
  // A hit moves an old entry out of the sweep's reach.
  CHECK(t->find(key(40), kT0 + 10min + 39s));
  CHECK(t->sweep(kT0 + 10min + 45s) == 5);  // keys 41..45
  CHECK(keysOf(*t, kT0 + 10min + 45s).count(key(40)) == 1);
  CHECK(t->sweep(kT0 + 1h) == 55);
  CHECK(t->size() == 0);
  CHECK(t->sessionsOf(1) == 0);
  CHECK(t->sessionsOf(2) == 0);
}

TEST_CASE("single shard: the cap evicts the least recently used entry, in order") {
  auto t = makeLocalStickTable(1h, 3, 1);
  FixedPlacement to1(1);
  t->lookupOrPlace("a", kT0, to1);
  t->lookupOrPlace("b", kT0 + 1s, to1);
  t->lookupOrPlace("c", kT0 + 2s, to1);
  CHECK(t->find("a", kT0 + 3s));  // a is now the most recent; b is the oldest
  t->lookupOrPlace("d", kT0 + 4s, to1);
  CHECK(keysOf(*t, kT0 + 5s) == std::set<std::string>{"a", "c", "d"});
  CHECK(t->counters().evictions == 1);
  t->pin("e", 1, kT0 + 5s);  // pin inserts too, and evicts c
  CHECK(keysOf(*t, kT0 + 6s) == std::set<std::string>{"a", "d", "e"});
  t->lookupOrPlace("a", kT0 + 6s, to1);
  t->lookupOrPlace("f", kT0 + 7s, to1);  // evicts d
  CHECK(keysOf(*t, kT0 + 8s) == std::set<std::string>{"a", "e", "f"});
  CHECK(t->size() == 3);
  CHECK(t->sessionsOf(1) == 3);
  CHECK(t->counters().evictions == 3);
  // Lowering the cap evicts the oldest first.
  t->setLimits(1h, 1);
  CHECK(keysOf(*t, kT0 + 8s) == std::set<std::string>{"f"});
  CHECK(t->counters().evictions == 5);
  CHECK(t->sessionsOf(1) == 1);
}

TEST_CASE("many shards: the cap is exact and lowering it keeps the most recent entries") {
  auto t = makeLocalStickTable(1h, 100);  // default shard count
  FixedPlacement to1(1), to2(2);
  for (int i = 0; i < 1000; ++i) {
    t->lookupOrPlace(key(i), kT0 + std::chrono::milliseconds(i), i % 2 ? to1 : to2);
    CHECK(t->size() == std::min(i + 1, 100));
  }
  CHECK(t->counters().evictions == 900);
  CHECK(t->sessionsOf(1) + t->sessionsOf(2) == 100);
  CHECK(t->dump(SIZE_MAX, kT0 + 1s).size() == 100);

  auto fresh = makeLocalStickTable(1h, 1000);
  for (int i = 0; i < 1000; ++i) fresh->lookupOrPlace(key(i), kT0 + std::chrono::seconds(i), to1);
  fresh->setLimits(1h, 10);
  std::set<std::string> want;
  for (int i = 990; i < 1000; ++i) want.insert(key(i));
  CHECK(keysOf(*fresh, kT0 + 1000s) == want);
  CHECK(fresh->sessionsOf(1) == 10);
  // A cap smaller than the shard count still admits entries.
  auto tiny = makeLocalStickTable(1h, 1);
  for (int i = 0; i < 50; ++i) tiny->lookupOrPlace(key(i), kT0, to1);
  CHECK(tiny->size() == 1);
  CHECK(keysOf(*tiny, kT0) == std::set<std::string>{key(49)});
}

TEST_CASE("setLimits changes the TTL of existing entries") {
  auto t = makeLocalStickTable(1h, 10);
  FixedPlacement to1(1);
  t->lookupOrPlace("a", kT0, to1);
  t->setLimits(5min, 10);
  CHECK_FALSE(t->find("a", kT0 + 5min));
  t->lookupOrPlace("b", kT0, to1);
  t->setLimits(2h, 10);
  CHECK(t->find("b", kT0 + 90min));
}

TEST_CASE("pin, erase and eraseEndpoint keep per-endpoint counters exact") {
  auto t = makeLocalStickTable(1h, 100);
  FixedPlacement to1(1), to2(2);
  for (int i = 0; i < 10; ++i) t->lookupOrPlace(key(i), kT0, i < 6 ? to1 : to2);
  CHECK(t->sessionsOf(1) == 6);
  CHECK(t->sessionsOf(2) == 4);
  CHECK(t->sessionsOf(3) == 0);
  t->pin(key(0), 3, kT0);  // overwrite
  t->pin(key(1), 1, kT0);  // same endpoint: no change
  t->pin("new", 3, kT0);   // insert
  CHECK(t->sessionsOf(1) == 5);
  CHECK(t->sessionsOf(3) == 2);
  CHECK(t->find(key(0), kT0) == std::optional<EndpointId>(3));
  CHECK(t->erase(key(9)));
  CHECK_FALSE(t->erase(key(9)));
  CHECK(t->sessionsOf(2) == 3);
  CHECK(t->eraseEndpoint(1) == 5);
  CHECK(t->sessionsOf(1) == 0);
  CHECK(t->eraseEndpoint(1) == 0);
  CHECK(t->size() == 5);
  CHECK(t->sessionsOf(2) == 3);
  CHECK(t->sessionsOf(3) == 2);
  // Erase and eviction counters: erase is not an eviction.
  CHECK(t->counters().evictions == 0);
  CHECK(t->counters().expirations == 0);
  // Any id works, including 0 and the all-ones value.
  t->pin("zero", 0, kT0);
  t->pin("ones", ~EndpointId{0}, kT0);
  CHECK(t->sessionsOf(0) == 1);
  CHECK(t->sessionsOf(~EndpointId{0}) == 1);
}

TEST_CASE("repin moves a session off an endpoint once, atomically per key") {
  auto t = makeLocalStickTable(1h, 100);
  FixedPlacement to1(1), to2(2), to3(3), none(std::nullopt);
  t->lookupOrPlace("k", kT0, to1);
  auto moved = t->repin("k", 1, kT0, to2);
  REQUIRE(moved);
  CHECK(moved->endpoint == 2);
  CHECK(moved->placed);
  // A second request of the same session that also saw endpoint 1 gets the new pin.
  auto again = t->repin("k", 1, kT0, to3);
  REQUIRE(again);
  CHECK(again->endpoint == 2);
  CHECK_FALSE(again->placed);
  CHECK(t->sessionsOf(1) == 0);
  CHECK(t->sessionsOf(2) == 1);
  // No endpoint: the entry is erased.
  CHECK_FALSE(t->repin("k", 2, kT0, none));
  CHECK(t->size() == 0);
  CHECK(t->sessionsOf(2) == 0);
  // Absent key: placed.
  auto placed = t->repin("other", 1, kT0, to3);
  CHECK(placed->endpoint == 3);
  CHECK(placed->placed);
}

TEST_CASE("concurrent first requests for one key agree on its endpoint") {
  constexpr int kThreads = 8;
  constexpr int kKeys = 2000;
  auto t = makeLocalStickTable(1h, 100000);
  std::vector<std::vector<StickTable::Lookup>> results(kThreads);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      FixedPlacement mine(100 + th);  // every thread would choose differently
      ready.fetch_add(1);
      while (ready.load() < kThreads) {
      }
      for (int i = 0; i < kKeys; ++i) {
        auto r = t->lookupOrPlace(key(i), kT0, mine);
        results[th].push_back(r.value());
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t total = 0;
  for (int i = 0; i < kKeys; ++i) {
    int placed = 0;
    for (int th = 0; th < kThreads; ++th) {
      CHECK(results[th][i].endpoint == results[0][i].endpoint);
      placed += results[th][i].placed;
    }
    CHECK(placed == 1);
  }
  for (int th = 0; th < kThreads; ++th) total += t->sessionsOf(100 + th);
  CHECK(total == kKeys);
  CHECK(t->size() == kKeys);
}

TEST_CASE(
    "session counters stay exact under concurrent insert, overwrite, erase, expiry, eviction") {
  constexpr int kThreads = 4;
  constexpr int kOps = 20000;
  auto t = makeLocalStickTable(1s, 500);
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      std::mt19937 rng(th);
      FixedPlacement places[4] = {FixedPlacement(1), FixedPlacement(2), FixedPlacement(3),
                                  FixedPlacement(4)};
      for (int i = 0; i < kOps; ++i) {
        std::string k = key(static_cast<int>(rng() % 1000));
        TimePoint now = kT0 + std::chrono::milliseconds(i);  // entries expire as i advances
        switch (rng() % 6) {
          case 0:
          case 1:
            t->lookupOrPlace(k, now, places[rng() % 4]);
            break;
          case 2:
            t->pin(k, 1 + rng() % 4, now);
            break;
          case 3:
            t->erase(k);
            break;
          case 4:
            t->repin(k, 1 + rng() % 4, now, places[rng() % 4]);
            break;
          case 5:
            if (i % 500 == 0)
              t->sweep(now);
            else
              t->find(k, now);
            break;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(t->size() <= 500);
  CHECK(t->counters().evictions > 0);
  CHECK(t->counters().expirations > 0);
  // Recount from the entries themselves (dump at a time where nothing has expired yet).
  TimePoint now = kT0 + std::chrono::milliseconds(kOps);
  std::map<EndpointId, uint64_t> recount;
  auto entries = t->dump(SIZE_MAX, kT0);
  CHECK(entries.size() == t->size());
  for (const auto& e : entries) ++recount[e.endpoint];
  for (EndpointId id = 1; id <= 4; ++id) CHECK(t->sessionsOf(id) == recount[id]);
  t->sweep(now + 1h);
  for (EndpointId id = 1; id <= 4; ++id) CHECK(t->sessionsOf(id) == 0);
  CHECK(t->size() == 0);
}

TEST_CASE("counters of endpoints that come and go are reclaimed and stay exact") {
  auto t = makeLocalStickTable(1min, 100000);
  // Many generations of endpoints (a rolling update every round), each with sessions.
  for (int round = 0; round < 50; ++round) {
    TimePoint now = kT0 + std::chrono::minutes(2 * round);
    for (int e = 0; e < 40; ++e) {
      EndpointId id = 1000 * round + e + 1;
      for (int s = 0; s < 3; ++s) t->pin(key(e * 10 + s) + "-" + std::to_string(round), id, now);
    }
    for (int e = 0; e < 40; ++e) CHECK(t->sessionsOf(1000 * round + e + 1) == 3);
    t->sweep(now + 1min);  // everything of this round expires; slots become reusable
    CHECK(t->size() == 0);
  }
  for (int e = 0; e < 40; ++e) CHECK(t->sessionsOf(1000 * 49 + e + 1) == 0);
}

TEST_CASE("memory per entry is bounded: <= 100 bytes plus the key" *
          doctest::skip(kMallocReplaced)) {
  constexpr int kEntries = 200000;
  std::vector<std::string> keys;
  keys.reserve(kEntries);
  size_t key_bytes = 0;
  for (int i = 0; i < kEntries; ++i) {
    keys.push_back("client-" + std::to_string(100000 + i));
    key_bytes += keys.back().size();
  }
  const double avg_key = static_cast<double>(key_bytes) / kEntries;
  FixedPlacement placements[4] = {FixedPlacement(1), FixedPlacement(2), FixedPlacement(3),
                                  FixedPlacement(4)};
  auto heapInUse = [] {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;  // small chunks in use + mmapped blocks
  };
  malloc_trim(0);
  const size_t before = heapInUse();
  auto t = makeLocalStickTable(30min, 1000000);
  for (int i = 0; i < kEntries; ++i) t->lookupOrPlace(keys[i], kT0, placements[i % 4]);
  const size_t after = heapInUse();
  REQUIRE(t->size() == kEntries);
  const double per_entry = static_cast<double>(after - before) / kEntries;
  MESSAGE("stick table: " << per_entry << " bytes/entry for keys of " << avg_key << " bytes ("
                          << per_entry - avg_key << " + key)");
  CHECK(per_entry <= 100 + avg_key);
  t.reset();
  // And the memory comes back.
  CHECK(heapInUse() <= before + 64 * 1024);
}

}  // namespace
}  // namespace sticky::proxy
