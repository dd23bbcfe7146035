#pragma once
// What the shared table writes in Redis, as pure functions (no I/O): session keys and their
// values, the idle-timer margin, and the peer-load hash of LeastSessions routes
// (docs/shared-table.md). RedisSessionStore (redis_store.h) is what sends them.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "routing/stick_table.h"

namespace sticky::proxy {

/// The Redis key of a session.
std::string sessionKey(std::string_view prefix, std::string_view route, std::string_view key);
/// An endpoint id as Redis stores it (16 lower-case hex digits), and back.
std::string endpointValue(EndpointId id);
/// The same into 16 chars at `out` (no allocation).
void writeEndpointValue(EndpointId id, char (&out)[16]);
std::optional<EndpointId> parseEndpointValue(std::string_view text);
/// How much longer than the route's TTL a Redis key lives: the refresh granularity.
std::chrono::milliseconds redisMargin(std::chrono::milliseconds ttl);
/// How long a session key lives in Redis from its last write or refresh: ttl + redisMargin(ttl).
std::chrono::milliseconds sessionLifetime(std::chrono::milliseconds ttl);
/// A session key's PX argument: sessionLifetime(ttl), in milliseconds.
std::string sessionPx(std::chrono::milliseconds ttl);

/// Peer load. The hash holding every replica's session counts for a route:
///   loadKey("sticky:", "shop/chat") -> "sticky:load:shop/chat"
/// (route names hold a '/', so no session key `<prefix><route>:<key>` is ever one of these).
std::string loadKey(std::string_view prefix, std::string_view route);
using EndpointCounts = std::vector<std::pair<EndpointId, uint64_t>>;
/// A replica's counts as its field holds them after the time stamp:
///   {{0x1f, 3}, {0x2a, 0}} -> "000000000000001f=3,000000000000002a=0"     {} -> ""
std::string encodeLoadCounts(const EndpointCounts& counts);
struct LoadField {
  int64_t at_ms = 0;  // Redis's clock (unix ms) when the replica wrote it
  EndpointCounts counts;
};
/// A field's value, "<unix_ms> <counts>"; nullopt if anything in it is malformed (a count over
/// kMaxPeerCount included), never a partial result:
///   "1733400000000 000000000000001f=3" -> {1733400000000, {{0x1f, 3}}}   "12 " -> {12, {}}
///   "12" -> nullopt   "x 000000000000001f=3" -> nullopt   "12 1f=3" -> nullopt
std::optional<LoadField> decodeLoadField(std::string_view value);
inline constexpr uint64_t kMaxPeerCount = uint64_t{1} << 40;
/// A field fresher than this counts in the peer load; one older than kPeerLoadGone is deleted.
inline constexpr std::chrono::milliseconds kPeerLoadFresh{3000};
inline constexpr std::chrono::milliseconds kPeerLoadGone{60000};

struct PeerLoad {
  std::unordered_map<EndpointId, uint64_t> sessions;  // summed over the fresh fields
  uint64_t replicas = 0;                              // fresh fields summed
  std::vector<std::string> gone;                      // fields to HDEL: stale or malformed
};
/// Sums the fields (replica id, value) of a load hash read at `now_ms` (Redis's clock): those
/// within kPeerLoadFresh of it, except `own`'s.
PeerLoad sumPeerLoad(const std::vector<std::pair<std::string, std::string>>& fields,
                     std::string_view own, int64_t now_ms);

}  // namespace sticky::proxy
