// The shared table's pure parts: the peer-load fields each replica writes to Redis and reads
// back from the others (the Redis side runs in test/integration/proxy/shared_table_test.cc).
#include "routing/redis_store.h"

#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

namespace sticky::proxy {
namespace {

constexpr int64_t kNow = 1'733'400'000'000;  // unix ms

std::string field(int64_t at_ms, const EndpointCounts& counts) {
  return std::to_string(at_ms) + " " + encodeLoadCounts(counts);
}

TEST_CASE("session values - an endpoint id is 16 lower-case hex digits, and back") {
  CHECK(endpointValue(0x0123456789abcdefULL) == "0123456789abcdef");
  CHECK(endpointValue(1) == "0000000000000001");
  CHECK(endpointValue(0xfedcba9876543210ULL) == "fedcba9876543210");
  for (EndpointId id : {EndpointId{1}, EndpointId{0x8000000000000000ULL}, ~EndpointId{0}}) {
    CHECK(parseEndpointValue(endpointValue(id)) == id);
  }
  CHECK(sessionKey("sticky:", "shop/chat", "42") == "sticky:shop/chat:42");
}

TEST_CASE("peer load - keys and fields round-trip") {
  CHECK(loadKey("sticky:", "shop/chat") == "sticky:load:shop/chat");
  CHECK(encodeLoadCounts({}).empty());
  CHECK(encodeLoadCounts({{0x1f, 3}, {0x2a, 0}}) == "000000000000001f=3,000000000000002a=0");

  const EndpointCounts counts{{0x1f, 3}, {0xffffffffffffffffULL, kMaxPeerCount}, {7, 0}};
  auto decoded = decodeLoadField(field(kNow, counts));
  REQUIRE(decoded);
  CHECK(decoded->at_ms == kNow);
  CHECK(decoded->counts == counts);

  auto empty = decodeLoadField("12 ");  // a replica with no endpoints' counts to give
  REQUIRE(empty);
  CHECK(empty->at_ms == 12);
  CHECK(empty->counts.empty());
}

TEST_CASE("peer load - a malformed field decodes to nothing, never to part of it") {
  const std::string ok = "000000000000001f=3";
  for (const std::string& bad : std::vector<std::string>{
           "",
           "12",                                        // no counts part at all
           " " + ok,                                    // no time
           "x " + ok,                                   // time not a number
           "-5 " + ok,                                  // before 1970
           "12x " + ok,                                 // trailing garbage in the time
           "99999999999999999999 " + ok,                // time out of range
           "12 1f=3",                                   // endpoint id not 16 hex digits
           "12 000000000000000g=3",                     // not hex
           "12 0000000000000000=3",                     // id 0 is no endpoint
           "12 000000000000001f",                       // no '='
           "12 000000000000001f=",                      // no count
           "12 000000000000001f=-1",                    // negative count
           "12 000000000000001f=3x",                    // trailing garbage in a count
           "12 000000000000001f=99999999999999999999",  // count out of range
           "12 000000000000001f=1099511627777",         // over kMaxPeerCount
           "12 " + ok + ",",                            // trailing comma
           "12 " + ok + ",," + ok,                      // empty item
           "12 ," + ok,                                 // leading comma
           "12  " + ok,                                 // two spaces
           std::string("12 000000000000001f=3\0", 22),  // a NUL byte
       }) {
    CAPTURE(bad);
    CHECK_FALSE(decodeLoadField(bad));
  }
}

TEST_CASE("peer load - fresh fields of other replicas are summed, stale ones dropped") {
  const std::vector<std::pair<std::string, std::string>> fields{
      {"me", field(kNow, {{1, 1000}})},              // own: live counts are used instead
      {"a", field(kNow - 500, {{1, 10}, {2, 20}})},  // fresh
      {"b", field(kNow - 3000, {{1, 5}, {3, 7}})},   // fresh, just
      {"c", field(kNow - 3001, {{1, 100}})},         // stale: ignored, kept
      {"d", field(kNow - 60001, {{1, 100}})},        // a replica that died: deleted
      {"e", "garbage"},                              // malformed: deleted
      {"f", field(kNow + 200, {{2, 1}})},            // Redis's clock went back a little
      {"g", field(kNow + 5000, {{2, 100}})},         // ... or a lot: not fresh
  };
  PeerLoad load = sumPeerLoad(fields, "me", kNow);
  CHECK(load.replicas == 3);
  CHECK(load.sessions.size() == 3);
  CHECK(load.sessions[1] == 15);
  CHECK(load.sessions[2] == 21);
  CHECK(load.sessions[3] == 7);
  CHECK(load.gone == std::vector<std::string>{"d", "e"});

  PeerLoad none = sumPeerLoad({}, "me", kNow);
  CHECK(none.replicas == 0);
  CHECK(none.sessions.empty());
  CHECK(none.gone.empty());
}

}  // namespace
}  // namespace sticky::proxy
