#include "routing/placement.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace sticky::proxy {
namespace {

using namespace std::chrono_literals;

const TimePoint kT0 = TimePoint{} + 1000h;

std::string key(int i) {
  return "user-" + std::to_string(i);
}

std::vector<EndpointId> endpoints(int n, int first = 0) {
  std::vector<EndpointId> ids;
  for (int i = first; i < first + n; ++i) {
    ids.push_back(endpointId("pod-" + std::to_string(i), "10.0.0." + std::to_string(i + 1), 8080));
  }
  return ids;
}

// The placement a route uses: the policy over the given endpoints, for the given table.
class PolicyPlacement : public PlacementFn {
 public:
  PolicyPlacement(Placement policy, std::vector<EndpointId> eligible, const StickTable& table)
      : policy_(policy), eligible_(std::move(eligible)), table_(table) {}
  std::optional<EndpointId> place(std::string_view key) const override {
    return pick(policy_, hashKey(key), eligible_, table_, rr_);
  }

 private:
  Placement policy_;
  std::vector<EndpointId> eligible_;
  const StickTable& table_;
  mutable std::atomic<uint64_t> rr_{0};
};

TEST_CASE("hashes and endpoint ids are stable and discriminating") {
  // Pinned values: a change here re-shuffles ConsistentHash routes across a rolling upgrade of
  // the proxy (replicas on different versions would disagree), so it must be deliberate.
  CHECK(hashKey("client-42") == 0x0989ba64bbf3f946ULL);
  CHECK(hashKey(std::string(40, 'z')) == 0xaad168d536b72a60ULL);
  CHECK(endpointId("chat-0", "10.0.0.5", 8080) == 0x06b1275823f297dbULL);
  CHECK(hashKey("") == hashKey(""));
  CHECK(hashKey("client-42") == hashKey(std::string("client-") + "42"));
  CHECK(hashKey("client-42") != hashKey("client-43"));
  CHECK(hashKey("a") != hashKey("b"));
  CHECK(hashKey(std::string(17, 'x')) != hashKey(std::string(18, 'x')));
  // Built in place: GCC 12 at -O2 warns falsely (-Warray-bounds) on `std::string(100, 'x') + "1"`.
  std::string long1(100, 'x'), long2(100, 'x');
  long1.push_back('1');
  long2.push_back('2');
  CHECK(hashKey(long1) != hashKey(long2));
  EndpointId a = endpointId("chat-0", "10.0.0.5", 8080);
  CHECK(a == endpointId(EndpointConfig{"chat-0", "10.0.0.5", 8080, EndpointState::Draining}));
  CHECK(a != endpointId("chat-1", "10.0.0.5", 8080));
  CHECK(a != endpointId("chat-0", "10.0.0.6", 8080));
  CHECK(a != endpointId("chat-0", "10.0.0.5", 8081));
  CHECK(endpointId("ab", "c", 1) != endpointId("a", "bc", 1));
  CHECK(a != 0);
  // Many distinct keys give distinct hashes (no trivial collisions).
  std::vector<uint64_t> hashes;
  for (int i = 0; i < 100000; ++i) hashes.push_back(hashKey(key(i)));
  std::sort(hashes.begin(), hashes.end());
  CHECK(std::adjacent_find(hashes.begin(), hashes.end()) == hashes.end());
}

TEST_CASE("no eligible endpoint: nothing is picked") {
  auto table = makeLocalStickTable(30min, 100);
  std::atomic<uint64_t> rr{0};
  for (Placement p : {Placement::LeastSessions, Placement::ConsistentHash, Placement::RoundRobin}) {
    CHECK_FALSE(pick(p, hashKey("k"), {}, *table, rr));
  }
}

TEST_CASE("LeastSessions balances new keys and ramps a new endpoint without moving sessions") {
  auto table = makeLocalStickTable(30min, 1000000);
  auto four = endpoints(4);
  PolicyPlacement place4(Placement::LeastSessions, four, *table);
  std::map<int, EndpointId> pinned;
  for (int i = 0; i < 10000; ++i) {
    auto r = table->lookupOrPlace(key(i), kT0, place4);
    REQUIRE(r);
    pinned[i] = r->endpoint;
  }
  uint64_t lo = UINT64_MAX, hi = 0;
  for (EndpointId id : four) {
    lo = std::min(lo, table->sessionsOf(id));
    hi = std::max(hi, table->sessionsOf(id));
  }
  CHECK(hi - lo <= 2);

  // Scale up: a 5th endpoint. No existing session moves; new keys go to it until it catches up.
  auto five = endpoints(5);
  PolicyPlacement place5(Placement::LeastSessions, five, *table);
  for (int i = 0; i < 10000; ++i) {
    auto r = table->lookupOrPlace(key(i), kT0, place5);
    CHECK_FALSE(r->placed);
    CHECK(r->endpoint == pinned[i]);
  }
  CHECK(table->sessionsOf(five[4]) == 0);
  for (int i = 10000; i < 12000; ++i) {
    auto r = table->lookupOrPlace(key(i), kT0, place5);
    CHECK(r->endpoint == five[4]);
  }
  // ...and then all five share new keys evenly.
  for (int i = 12000; i < 22000; ++i) table->lookupOrPlace(key(i), kT0, place5);
  lo = UINT64_MAX, hi = 0;
  for (EndpointId id : five) {
    lo = std::min(lo, table->sessionsOf(id));
    hi = std::max(hi, table->sessionsOf(id));
  }
  CHECK(hi - lo <= 2);
}

TEST_CASE("LeastSessions breaks ties by rendezvous score, so equal endpoints split keys") {
  auto table = makeLocalStickTable(30min, 100);
  auto ids = endpoints(4);
  std::map<EndpointId, int> first_choice;
  for (int i = 0; i < 4000; ++i) {
    auto id = pickLeastSessions(hashKey(key(i)), ids, *table);  // empty table: all tied
    CHECK(id == pickRendezvous(hashKey(key(i)), ids));
    ++first_choice[*id];
  }
  for (EndpointId id : ids) CHECK(first_choice[id] > 800);
}

TEST_CASE("LeastSessions adds the peers' sessions to the table's own") {
  auto table = makeLocalStickTable(30min, 100000);
  auto three = endpoints(3);
  // Own table: 3 on [0], 5 on [1], none on [2].
  for (int i = 0; i < 8; ++i) table->pin(key(i), three[i < 3 ? 0 : 1], kT0);
  const uint64_t h = hashKey("new");
  CHECK(pickLeastSessions(h, three, *table) == three[2]);
  const std::vector<uint64_t> peers{0, 0, 6};  // [2] is the most loaded cluster-wide
  CHECK(pickLeastSessions(h, three, *table, peers) == three[0]);
  const std::vector<uint64_t> peers2{9, 0, 6};  // loads 12, 5, 6
  CHECK(pickLeastSessions(h, three, *table, peers2) == three[1]);
  // A count list that does not match the endpoints is ignored (own counts only).
  const std::vector<uint64_t> short_list{100, 100};
  CHECK(pickLeastSessions(h, three, *table, short_list) == three[2]);
  // pick() passes them to LeastSessions only.
  std::atomic<uint64_t> rr{0};
  CHECK(pick(Placement::LeastSessions, h, three, *table, rr, peers) == three[0]);
  CHECK(pick(Placement::ConsistentHash, h, three, *table, rr, peers) == pickRendezvous(h, three));
}

TEST_CASE("LeastSessions with peer counts fills a new endpoint up to the others, then splits") {
  // A replica that has seen none of the old keys: the other replicas hold 5000 on each of two
  // endpoints, none on the third, which this one is to fill first.
  auto table = makeLocalStickTable(30min, 100000);
  auto three = endpoints(3);
  const std::vector<uint64_t> peers{5000, 5000, 0};
  std::map<EndpointId, uint64_t> placed;
  for (int i = 0; i < 7500; ++i) {
    auto id = pickLeastSessions(hashKey(key(i)), three, *table, peers);
    REQUIRE(id);
    table->pin(key(i), *id, kT0);
    ++placed[*id];
    if (i < 5000) CHECK(*id == three[2]);
  }
  CHECK(placed[three[2]] >= 5000 + 800);
  for (size_t e = 0; e < 3; ++e) {
    uint64_t total = table->sessionsOf(three[e]) + peers[e];
    CHECK(total >= 5833);
    CHECK(total <= 5835);
  }
}

TEST_CASE("ConsistentHash spreads keys evenly and moves only what it must") {
  auto table = makeLocalStickTable(30min, 100);
  std::atomic<uint64_t> rr{0};
  constexpr int kKeys = 100000;
  auto five = endpoints(5);
  std::vector<EndpointId> chosen(kKeys);
  std::map<EndpointId, int> counts;
  for (int i = 0; i < kKeys; ++i) {
    chosen[i] = *pick(Placement::ConsistentHash, hashKey(key(i)), five, *table, rr);
    ++counts[chosen[i]];
  }
  for (EndpointId id : five) {
    CHECK(counts[id] > kKeys / 5 * 95 / 100);
    CHECK(counts[id] < kKeys / 5 * 105 / 100);
  }
  // Remove one endpoint: only its keys move.
  std::vector<EndpointId> four(five.begin(), five.begin() + 4);
  int moved = 0;
  for (int i = 0; i < kKeys; ++i) {
    EndpointId now = *pickRendezvous(hashKey(key(i)), four);
    if (chosen[i] != five[4]) {
      CHECK(now == chosen[i]);
    } else {
      ++moved;
    }
  }
  CHECK(moved == counts[five[4]]);
  // Add a sixth: about 1/6 of the keys move, all of them to the new endpoint.
  auto six = endpoints(6);
  int to_new = 0;
  for (int i = 0; i < kKeys; ++i) {
    EndpointId now = *pickRendezvous(hashKey(key(i)), six);
    if (now != chosen[i]) {
      CHECK(now == six[5]);
      ++to_new;
    }
  }
  CHECK(to_new > kKeys / 6 * 90 / 100);
  CHECK(to_new < kKeys / 6 * 110 / 100);
  // Order of the endpoint list does not matter.
  std::vector<EndpointId> reversed(five.rbegin(), five.rend());
  for (int i = 0; i < 1000; ++i) CHECK(*pickRendezvous(hashKey(key(i)), reversed) == chosen[i]);
}

TEST_CASE("RoundRobin takes the endpoints in turn") {
  auto table = makeLocalStickTable(30min, 100);
  std::atomic<uint64_t> rr{0};
  auto ids = endpoints(3);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 3; ++i) {
      CHECK(*pick(Placement::RoundRobin, hashKey(key(i)), ids, *table, rr) == ids[i]);
    }
  }
  CHECK(rr.load() == 9);
}

}  // namespace
}  // namespace sticky::proxy
