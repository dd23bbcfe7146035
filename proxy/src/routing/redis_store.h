#pragma once
// The shared stick table on Redis: SessionStore (session_store.h) over redis::Client. Redis is
// the authority; each replica's StickTable is a cache of it.
//
// Keys. One string key per session, `<prefix><route>:<key>` -> the endpoint id as 16 hex
// digits (a stable hash of name, address and port: the same on every replica), with a PX of
// ttl + margin (margin = ttl/8, between 1 s and 5 min). No operation spans two sessions, so the
// layout is Redis Cluster-ready. Events (moves, evictions) go to the channel `<prefix>events`.
//
//   miss      SET k <candidate> NX PX <ttl+margin> GET        nil: placed; a value: adopt it
//             (single-flight per key in each worker: later askers wait for the first answer),
//             sent on the asking worker's own connection, so the round trip never leaves the
//             worker's thread (attachWorker); from any other thread, on the store's
//   idle      every second, for entries used since last confirmed and confirmed >= margin ago,
//             pipelined: if GET k == mine then PEXPIRE k (Lua). Missing -> SET NX GET again;
//             another value -> adopt it (a conflict). Never a write per request.
//   move      Lua: if k is unset or still `from`: SET k <to> PX (or DEL), PUBLISH; else return
//             the value that won, which this replica adopts
//   evict     DEL k / SCAN <prefix><route>:* + delete-if-equal, PUBLISH; replicas drop copies
//   reconnect every live local entry re-asserted with SET NX GET (Redis restarted empty, or
//             a failover lost writes): Redis's answer wins, conflicts counted
//   census    on demand (the admin API's stats), at most every 5 s: SCAN <prefix>* COUNT 1000
//             + pipelined GETs, counted by route and endpoint: the cluster-wide session counts
//   load      every second, per LeastSessions route, pipelined: one Lua script stamps this
//             replica's per-endpoint session counts with Redis's clock into the hash
//             <prefix>load:<route> (field: the replica id; PEXPIRE 60 s) and returns the other
//             replicas' fields; those at most 3 s old are summed into the route's peer load
//             (Route::setPeerLoad), those over 60 s old or malformed are HDEL'd
//   down      the client fails fast ("Disconnected"): claims are Unavailable, the request is
//             placed locally and the entry marked unsynced; nothing queues
//
// Idle expiry is exact to within margin + 1 s. See docs/shared-table.md.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/result.h"
#include "config/proxy_config.h"
#include "redis/client.h"
#include "routing/redis_layout.h"
#include "routing/router.h"
#include "routing/session_store.h"

namespace sticky::proxy {

struct RedisStoreStats {
  std::atomic<uint64_t> refreshed{0};           // keys whose idle timer was extended in Redis
  std::atomic<uint64_t> refresh_batches{0};     // pipelined refresh batches sent (per route)
  std::atomic<uint64_t> refresh_batch_keys{0};  // keys in them
  std::atomic<uint64_t> reasserted{0};          // local entries written back (reconnect, missing)
  std::atomic<uint64_t> conflicts{0};           // Redis held another endpoint: adopted
  std::atomic<uint64_t> moves{0};               // compare-and-set moves sent
  std::atomic<uint64_t> move_conflicts{0};      // ... that found another replica's move first
  std::atomic<uint64_t> events_sent{0};
  std::atomic<uint64_t> events_applied{0};  // other replicas' events applied to this cache
};

/// The client options for a RedisConfig (reads the password file). Error: one sentence.
Result<redis::ClientOptions> redisClientOptions(const RedisConfig& config);

class RedisSessionStore final : public SessionStore {
 public:
  /// Starts a thread of its own running the Redis client and the refresh round. Connects in the
  /// background: until Redis answers, claims are Unavailable (requests are placed locally).
  static Result<std::unique_ptr<RedisSessionStore>> start(const RedisConfig& config,
                                                          RouterHolder& routers);
  ~RedisSessionStore() override;
  RedisSessionStore(const RedisSessionStore&) = delete;
  RedisSessionStore& operator=(const RedisSessionStore&) = delete;

  /// Closes the connections and joins the thread. Claims in flight complete as Unavailable.
  /// After detachWorkers().
  void stop();

  /// Gives the worker running `io` a Redis connection of its own for its claims (named
  /// `<replica id>:claims-<index>` in CLIENT LIST). Call before `io` runs, and only for a
  /// worker that will run until detachWorkers(). Not thread-safe: call from one thread.
  void attachWorker(boost::asio::io_context& io, size_t index);
  /// Closes the workers' connections on their threads (their claims in flight complete as
  /// Unavailable; later claims use the store's connection) and waits for each. Call while the
  /// workers still run, before they stop.
  void detachWorkers();

  /// The store's connection and every worker's are connected.
  bool connected() const;
  /// False from the start until every connection to Redis was up at once, or until the startup
  /// grace (2 x the connect timeout) has passed without that: a replica that takes traffic before
  /// it reaches Redis places sessions on its own. /readyz waits for it.
  bool startupSettled() const;
  std::string primary() const;
  const std::string& replicaId() const { return replica_id_; }
  const RedisStoreStats& stats() const { return stats_; }
  const redis::RedisStats& clientStats() const { return *client_stats_; }

  void claim(std::string_view route, std::string_view key, EndpointId candidate,
             std::chrono::milliseconds ttl, ClaimDone done) override;
  void moved(std::string_view route, std::string_view key, EndpointId from, EndpointId to,
             std::chrono::milliseconds ttl) override;
  void erased(std::string_view route, std::string_view key) override;
  void erasedEndpoint(std::string_view route, EndpointId endpoint) override;
  std::shared_ptr<const SessionCensus> census() override;

  /// How old a census may get before asking for it starts a new one.
  static constexpr std::chrono::seconds kCensusInterval{5};

 private:
  // A worker's connection for its claims, and its claims in flight (by redis key). Touched on
  // that worker's thread only, so without a lock. A claim allocates its map node and key, no
  // more: the command is encoded into `scratch`, and the reply's callback is two pointers.
  struct Lane;
  struct Flight {
    Lane* lane = nullptr;
    const std::string* redis_key = nullptr;  // the map's own key
    EndpointId candidate = 0;
    ClaimDone first;
    std::vector<ClaimDone> joined;  // later askers (rare)
  };
  struct Lane {
    std::unique_ptr<redis::Client> client;
    bool up = false;  // counted in lanes_up_
    std::unordered_map<std::string, Flight> inflight;
    std::string scratch;  // the command being encoded
  };
  // The lane of the worker running on this thread, if that worker is attached to `tl_store_`.
  static thread_local const RedisSessionStore* tl_store_;
  static thread_local Lane* tl_lane_;

  RedisSessionStore(const RedisConfig& config, redis::ClientOptions options, std::string replica_id,
                    RouterHolder& routers);
  void claimOnLane(Lane& lane, std::string redis_key, EndpointId candidate,
                   std::chrono::milliseconds ttl, ClaimDone done);
  void finishFlight(Flight& flight, const redis::CommandResult& reply);
  ClaimResult claimResult(const std::string& redis_key, EndpointId candidate,
                          const redis::CommandResult& reply) const;
  void finishClaim(const std::string& redis_key, EndpointId candidate, redis::CommandResult reply);
  void publish(std::string_view op, std::string_view route, std::string_view arg,
               std::string_view key);
  void onEvent(std::string_view payload);
  void scheduleRefresh();
  void refreshRound();
  void publishLoads();
  void reassert(std::string route, std::vector<SessionEntry> entries, size_t from);
  void adopt(std::string_view route, std::string_view key, std::string_view value);
  void scanAndDelete(std::string route, std::string pattern, std::string value, std::string cursor);
  void censusStep(std::shared_ptr<SessionCensus> work, std::string cursor);
  void finishCensus(std::shared_ptr<SessionCensus> work);

  std::string prefix_;
  std::string channel_;
  TimePoint settle_deadline_;
  mutable std::atomic<bool> ever_connected_{false};  // set by startupSettled()
  std::string replica_id_;
  redis::ClientOptions lane_options_;  // the store's, without pub/sub (attachWorker)
  RouterHolder& routers_;
  RedisStoreStats stats_;
  std::shared_ptr<redis::RedisStats> client_stats_;
  boost::asio::io_context io_{1};
  std::unique_ptr<redis::Client> client_;
  boost::asio::steady_timer refresh_timer_{io_};
  std::atomic<int> refreshes_in_flight_{0};  // batches of the current round (io thread)
  bool loads_in_flight_ = false;             // the last round's peer-load batch (io thread)
  bool load_refused_ = false;  // warned that Redis refused the load script (io thread)
  std::thread thread_;
  std::once_flag stopped_;

  std::mutex census_mu_;
  std::shared_ptr<const SessionCensus> census_;  // the latest complete count
  bool census_running_ = false;                  // guarded by census_mu_

  std::mutex inflight_mu_;
  std::unordered_map<std::string, std::vector<ClaimDone>> inflight_;  // redis key -> waiters

  // Written by attachWorker() and detachWorkers() only; the counts are what other threads read.
  std::vector<std::pair<boost::asio::io_context*, std::unique_ptr<Lane>>> lanes_;
  std::atomic<size_t> lanes_attached_{0};
  std::atomic<size_t> lanes_up_{0};
};

}  // namespace sticky::proxy
