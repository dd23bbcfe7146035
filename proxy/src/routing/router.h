#pragma once
// Routing: an immutable snapshot (Router) built from a ProxyConfig, answering "where does this
// request go". The forwarding path asks Route::decide; the admin server and metrics read stats
// and tables. Stick tables, stats and endpoint down-marks outlive snapshots: a new Router built
// with the previous one as `previous` carries them over for routes/endpoints that still exist.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "config/proxy_config.h"
#include "routing/code_class_counts.h"
#include "routing/session_store.h"
#include "routing/stick_table.h"

namespace sticky::proxy {

/// Upper bounds (seconds) of the upstream latency histogram buckets; +Inf is implicit.
inline constexpr std::array<double, 14> kLatencyBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

struct EndpointStats {
  std::atomic<uint64_t> requests{0};
  CodeClassCounts responses;  // upstream response heads received from the endpoint
  std::atomic<uint64_t> connect_failures{0};
};

struct RouteStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> placements{0};  // new sessions created
  std::atomic<uint64_t> moves{0};       // sessions moved to another endpoint (or rejected, lost)
  std::atomic<uint64_t> admin_evictions{0};    // erased through the admin API
  std::atomic<uint64_t> replica_evictions{0};  // erased by another replica's admin eviction event
  std::atomic<uint64_t> rejected_missing_key{0};
  // What the route's clients got (sticky_responses_total): upstream heads relayed to them, and
  // the proxy's own replies after the route matched.
  CodeClassCounts responses_from_upstream;
  CodeClassCounts responses_from_proxy;
  std::atomic<uint64_t> no_endpoint{0};
  std::array<std::atomic<uint64_t>, kLatencyBuckets.size() + 1> latency_buckets{};  // last: +Inf
  std::atomic<uint64_t> latency_count{0};
  std::atomic<uint64_t> latency_sum_us{0};
};

/// What the shared store did for a route's requests (zero without a store).
struct SharedTableStats {
  std::atomic<uint64_t> claims{0};       // misses answered through the store
  std::atomic<uint64_t> adopted{0};      // answered with another replica's placement
  std::atomic<uint64_t> unavailable{0};  // placed locally: the store did not answer in time
};

class Endpoint {
 public:
  const EndpointConfig& config() const;
  EndpointId id() const;
  const boost::asio::ip::tcp::endpoint& address() const;
  bool active() const { return config().state == EndpointState::Active; }
  /// Marked down after a refused/reset connection, until the down period passes.
  bool isDown(TimePoint now) const;
  void markDown(TimePoint until) const;
  EndpointStats& stats() const;

  // Implementation detail, public for construction by Router::build.
  struct State;
  explicit Endpoint(std::shared_ptr<State> state);

 private:
  std::shared_ptr<State> state_;
};

/// Claim: only with a shared store, for a key this replica has no entry for: ask the store
/// (SessionStore::claim with `candidate`), then Route::settle gives the Forward or Reject.
enum class Verdict { Forward, Reject, Claim };

struct RouteDecision {
  Verdict verdict = Verdict::Reject;
  const Endpoint* endpoint = nullptr;  // Forward: where to send it
  int status = 0;                      // Reject: 400 (missing key) or 503
  std::string_view reason;             // Reject: one sentence for the response body
  /// Non-empty when the session moved (its endpoint is gone or down): the previous endpoint's
  /// name. Forward: add HeaderNames::moved_from to the request and session_moved to the
  /// response. Reject (onEndpointLost: Reject): add session_moved to the 503.
  std::string moved_from;
  bool pinned = false;       // a session entry exists for this request (false: unpinned balance)
  EndpointId candidate = 0;  // Claim: this replica's choice, if the store has none
};

/// A route's name as metric labels: routes are named "namespace/name" after their StickyRoute
/// (validation requires it); a name without '/' would have no namespace.
///   splitRouteName("shop/chat") -> {"shop", "chat"}   splitRouteName("chat") -> {"", "chat"}
///   splitRouteName("a/b/c")     -> {"a", "b/c"}       (split at the first '/')
struct RouteLabels {
  std::string_view ns;    // label `namespace`
  std::string_view name;  // label `stickyroute`
};
RouteLabels splitRouteName(std::string_view route_name);

class Route {
 public:
  const RouteConfig& config() const;
  /// config().name split once, when the route is built (views into config().name).
  RouteLabels labels() const;
  std::span<const Endpoint> endpoints() const;
  const Endpoint* findEndpoint(EndpointId id) const;
  const Endpoint* findEndpoint(std::string_view name) const;
  /// The name of endpoint `id`: a current one, or one that left the config while sessions still
  /// pointed at it (for session dumps and the moved-from header). Empty if unknown.
  std::string_view endpointName(EndpointId id) const;

  /// Where a request goes. `key` is the session header's value, nullopt when absent.
  RouteDecision decide(std::optional<std::string_view> key, TimePoint now) const;
  /// After a Claim: pins the store's answer (or, store unavailable, the candidate, to be
  /// reconciled later) and decides as for a hit.
  RouteDecision settle(std::string_view key, EndpointId candidate, ClaimResult result,
                       TimePoint now) const;
  /// The shared store sessions of this route are kept in, or nullptr (local table only).
  SessionStore* store() const;
  /// Admin evictions: the local table, and with a shared store every replica's and the store's.
  bool evict(std::string_view key) const;
  size_t evictEndpoint(EndpointId endpoint) const;

  /// `failed` refused or reset the connection before any response byte: marks it down for
  /// limits.endpoint_down_period and decides again following onEndpointLost.
  RouteDecision failover(std::optional<std::string_view> key, const Endpoint& failed,
                         TimePoint now) const;
  /// Records a completed upstream exchange for stats and metrics.
  void recordResponse(const Endpoint& endpoint, int status,
                      std::chrono::microseconds upstream_latency) const;

  StickTable& table() const;
  RouteStats& stats() const;
  SharedTableStats& sharedStats() const;

  /// Peer load (LeastSessions with a shared store): the sessions other replicas reported per
  /// endpoint, and how many replicas reported, valid until `fresh_until`. Endpoints of this
  /// snapshot missing from `sessions` get 0. Called by the store's thread once a round; read
  /// lock-free by placement (relaxed per-endpoint counters, published by `fresh_until`).
  void setPeerLoad(const std::unordered_map<EndpointId, uint64_t>& sessions, uint64_t replicas,
                   TimePoint fresh_until) const;
  /// Other replicas whose load is fresh at `now` (0 once the last report went stale).
  uint64_t peerReplicas(TimePoint now) const;

  struct State;
  explicit Route(std::shared_ptr<State> state);

 private:
  std::shared_ptr<State> state_;
};

class Router {
 public:
  /// Validates `config` and builds a snapshot, carrying over tables/stats from `previous`.
  static Result<std::shared_ptr<const Router>, ConfigErrors> build(ProxyConfig config,
                                                                   const Router* previous,
                                                                   TimePoint now,
                                                                   SessionStore* store = nullptr);
  const ProxyConfig& config() const;
  /// The route for a request: host (no port, any case) must match, then longest path prefix.
  const Route* match(std::string_view host, std::string_view path) const;
  std::span<const Route> routes() const;
  const Route* findRoute(std::string_view name) const;
  /// Drops expired sessions from every table.
  size_t sweep(TimePoint now) const;

  struct State;
  explicit Router(std::unique_ptr<State> state);
  ~Router();

 private:
  std::unique_ptr<State> state_;
};

/// The current Router, swapped atomically. Workers keep their own shared_ptr and re-read it
/// when generation() changes, so the request path takes no lock.
class RouterHolder {
 public:
  std::shared_ptr<const Router> current() const;
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  bool loaded() const { return generation() > 0; }
  /// Validates, builds and swaps. On error the current Router keeps serving.
  Result<Ok, ConfigErrors> apply(ProxyConfig config, TimePoint now);
  /// The shared store every Router built from now on uses (set once, before the first apply).
  void setStore(SessionStore* store) { store_ = store; }
  SessionStore* store() const { return store_; }

 private:
  SessionStore* store_ = nullptr;
  mutable std::mutex mu_;  // guards router_ (swap and copy); apply is serialized by it too
  std::shared_ptr<const Router> router_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace sticky::proxy
