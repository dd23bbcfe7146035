#pragma once
// The stick table: session key -> endpoint, with idle TTL and an LRU cap. An interface, because a
// shared (Redis-backed) table will stand behind it later; LocalStickTable is the in-process one.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sticky::proxy {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

/// Stable identity of an endpoint across config swaps: a hash of (name, address, port).
using EndpointId = uint64_t;

struct SessionEntry {
  std::string key;
  EndpointId endpoint = 0;
  std::chrono::milliseconds idle{0};
};

struct StickTableCounters {
  uint64_t expirations = 0;  // dropped because idle past the TTL
  uint64_t evictions = 0;    // dropped to stay under maxSessions (LRU); erase() is not counted
  /// Entries the shared store has not confirmed since markUnsynced()/markAllUnsynced() (placed
  /// while it was unavailable, or its events may have been missed), until takeRefreshes() hands
  /// them out again. Always 0 without a store.
  uint64_t unsynced = 0;
};

/// How often a shared table's owner calls takeRefreshes() (see there).
inline constexpr std::chrono::seconds kRefreshRound{1};

/// Chooses an endpoint for a key that has none. Called under the key's shard lock, so it must
/// not call back into the same table except for sessionsOf() (lock-free).
class PlacementFn {
 public:
  virtual ~PlacementFn() = default;
  virtual std::optional<EndpointId> place(std::string_view key) const = 0;
};

class StickTable {
 public:
  virtual ~StickTable() = default;

  struct Lookup {
    EndpointId endpoint = 0;
    bool placed = false;  // true: this call created the entry
  };

  /// The pinned endpoint of `key` (refreshing its idle timer), or, if absent or expired, the one
  /// `placement` chooses, pinned atomically: concurrent first requests for one key agree.
  /// nullopt only when the key is absent and placement has no endpoint.
  virtual std::optional<Lookup> lookupOrPlace(std::string_view key, TimePoint now,
                                              const PlacementFn& placement) = 0;
  /// The pinned endpoint of `key` without placing (refreshes the idle timer).
  virtual std::optional<EndpointId> find(std::string_view key, TimePoint now) = 0;
  /// Moves `key` off `from`, atomically per key: if it is pinned to `from` (or absent or
  /// expired), pins it to what `placement` chooses (placed = true), or erases it when placement
  /// has no endpoint (returns nullopt). If a concurrent request already re-pinned it elsewhere,
  /// returns that pin (placed = false), so concurrent requests of one moved session agree.
  virtual std::optional<Lookup> repin(std::string_view key, EndpointId from, TimePoint now,
                                      const PlacementFn& placement);
  /// Pins `key` to `endpoint`, replacing any previous entry (used when a session moves).
  virtual void pin(std::string_view key, EndpointId endpoint, TimePoint now) = 0;
  virtual bool erase(std::string_view key) = 0;
  /// Removes every session of `endpoint`; returns how many.
  virtual size_t eraseEndpoint(EndpointId endpoint) = 0;
  /// Drops expired entries; returns how many. Called periodically.
  virtual size_t sweep(TimePoint now) = 0;

  virtual void setLimits(std::chrono::milliseconds ttl, uint64_t max_sessions) = 0;
  virtual size_t size() const = 0;
  /// Live sessions pinned to `endpoint` (lock-free; may include not-yet-swept expired ones).
  virtual uint64_t sessionsOf(EndpointId endpoint) const = 0;
  virtual std::vector<SessionEntry> dump(size_t limit, TimePoint now) const = 0;
  virtual StickTableCounters counters() const = 0;

  // With a shared store (routing/session_store.h) the table is a cache of the store's entries;
  // these two keep the store's idle timers in step without a store write per request.

  /// Entries used since the store last confirmed them and confirmed at least `min_age` ago (at
  /// most `limit`; the rest wait for the next call), now counted as confirmed. An entry placed
  /// by pin() counts as confirmed at that moment. Called every kRefreshRound. The table tracks
  /// the entries used since confirmed from the first call on, so a call costs those entries,
  /// not the table's size.
  virtual std::vector<SessionEntry> takeRefreshes(TimePoint now, std::chrono::nanoseconds min_age,
                                                  size_t limit) = 0;
  /// Makes `key` due for takeRefreshes at once (placed while the store was unavailable).
  virtual void markUnsynced(std::string_view key) = 0;
  /// The same for every entry used within min_age + two rounds before `now` (the store's events
  /// may have been missed: each is checked against the store by the next round).
  virtual void markAllUnsynced(TimePoint now, std::chrono::nanoseconds min_age) = 0;
};

/// In-process sharded table (one mutex per shard).
std::unique_ptr<StickTable> makeLocalStickTable(std::chrono::milliseconds ttl,
                                                uint64_t max_sessions);
/// The same with a given shard count (rounded up to a power of two; 1 = exact global LRU).
std::unique_ptr<StickTable> makeLocalStickTable(std::chrono::milliseconds ttl,
                                                uint64_t max_sessions, size_t shards);

}  // namespace sticky::proxy
