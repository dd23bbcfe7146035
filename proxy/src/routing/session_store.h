#pragma once
// The authority behind every replica's stick tables (a shared table). Each proxy's StickTable
// becomes a cache of it: a hit stays local, a miss asks the store once, and moves and evictions
// are told to it so every replica converges. Route (router.h) calls it; RedisSessionStore
// (routing/redis_store.h) is the implementation. No store configured: none of this runs.
//
//   miss:  route.decide() -> Verdict::Claim{candidate}
//          store.claim(route, key, candidate)  ... one round trip, single-flight per key ...
//          route.settle(key, candidate, result) -> Forward to the store's endpoint
//   move:  route.decide()/failover() re-pin locally, then store.moved(...) (compare-and-set;
//          the store fixes this replica's entry if another replica moved it first)

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "routing/stick_table.h"

namespace sticky::proxy {

struct ClaimResult {
  enum class Source {
    Placed,       // the store had none: the candidate is now the session's endpoint
    Adopted,      // the store had one (placed by another replica, or earlier): `endpoint`
    Joined,       // another request of this process asked for the same key first: its answer
    Unavailable,  // the store did not answer in time: place locally, reconcile later
  };
  EndpointId endpoint = 0;
  Source source = Source::Unavailable;
};

/// Sessions counted in the store: every replica's, by route and endpoint. Sessions whose
/// endpoint is not in a route's config any more count in `total` only.
struct SessionCensus {
  struct RouteCount {
    uint64_t total = 0;
    std::unordered_map<EndpointId, uint64_t> by_endpoint;
  };
  TimePoint taken{};                                   // when the count finished
  std::unordered_map<std::string, RouteCount> routes;  // by route name ("namespace/name")
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  using ClaimDone = std::function<void(ClaimResult)>;
  /// The store's endpoint for `key` of `route`, set to `candidate` if it has none, with an idle
  /// timer of `ttl`. `done` runs exactly once, on any thread, within the store's timeout.
  virtual void claim(std::string_view route, std::string_view key, EndpointId candidate,
                     std::chrono::milliseconds ttl, ClaimDone done) = 0;
  /// The session moved from `from` to `to` (0: it was dropped) on this replica. Compare-and-set
  /// in the store; every replica drops its copy. If the store's entry had moved elsewhere
  /// already, the store re-pins this replica's entry to that one.
  virtual void moved(std::string_view route, std::string_view key, EndpointId from, EndpointId to,
                     std::chrono::milliseconds ttl) = 0;
  /// An eviction through this replica's admin socket: applied to the store and every replica.
  virtual void erased(std::string_view route, std::string_view key) = 0;
  virtual void erasedEndpoint(std::string_view route, EndpointId endpoint) = 0;
  /// The latest complete count of the store's sessions, or null before the first. Asking for it
  /// starts a new count in the background when the latest is older than the store's interval,
  /// so the counting costs nothing while nobody asks.
  virtual std::shared_ptr<const SessionCensus> census() = 0;
};

}  // namespace sticky::proxy
