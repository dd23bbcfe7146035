// Router: immutable routing snapshots built from a ProxyConfig. What must survive a config
// change (stick tables, stats, round-robin turn, endpoint down-marks, names of departed
// endpoints that still have sessions) is held by shared_ptr and handed from the previous
// snapshot to the next by route name and endpoint id.

#include "routing/router.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include <boost/asio/ip/address.hpp>
#include <boost/container/small_vector.hpp>

#include "routing/placement.h"
#include "routing/route_matcher.h"

namespace sticky::proxy {
namespace {

int64_t ticks(TimePoint t) {
  return t.time_since_epoch().count();
}

constexpr std::string_view kUnknownEndpoint = "unknown";

// State of an endpoint that outlives snapshots (keyed by route name and endpoint id).
struct EndpointShared {
  EndpointStats stats;
  std::atomic<int64_t> down_until{std::numeric_limits<int64_t>::min()};
  std::atomic<uint64_t> peer_sessions{0};  // other replicas' sessions here (Route::setPeerLoad)
};

// State of a route that outlives snapshots (keyed by route name).
struct RouteShared {
  explicit RouteShared(const RouteConfig& config)
      : table(makeLocalStickTable(config.ttl, config.max_sessions)) {}
  std::unique_ptr<StickTable> table;
  RouteStats stats;
  SharedTableStats shared_stats;
  std::atomic<uint64_t> round_robin{0};
  // Peer load: the endpoints' peer_sessions count until this steady tick (release/acquire).
  std::atomic<int64_t> peer_load_until{std::numeric_limits<int64_t>::min()};
  std::atomic<uint64_t> peer_replicas{0};
};

using EligibleIds = boost::container::small_vector<EndpointId, 32>;
using PeerCounts = boost::container::small_vector<uint64_t, 32>;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Endpoint

struct Endpoint::State {
  EndpointConfig config;
  EndpointId id = 0;
  boost::asio::ip::tcp::endpoint address;
  std::shared_ptr<EndpointShared> shared;
};

Endpoint::Endpoint(std::shared_ptr<State> state) : state_(std::move(state)) {}
const EndpointConfig& Endpoint::config() const {
  return state_->config;
}
EndpointId Endpoint::id() const {
  return state_->id;
}
const boost::asio::ip::tcp::endpoint& Endpoint::address() const {
  return state_->address;
}
EndpointStats& Endpoint::stats() const {
  return state_->shared->stats;
}

bool Endpoint::isDown(TimePoint now) const {
  return ticks(now) < state_->shared->down_until.load(std::memory_order_acquire);
}

void Endpoint::markDown(TimePoint until) const {
  auto& down = state_->shared->down_until;
  int64_t want = ticks(until);
  int64_t cur = down.load(std::memory_order_relaxed);
  while (cur < want && !down.compare_exchange_weak(cur, want, std::memory_order_acq_rel)) {
  }
}

// ---------------------------------------------------------------------------------------------
// Route

struct Route::State {
  RouteConfig config;
  RouteLabels labels;  // views into config.name
  Duration endpoint_down_period{0};
  std::vector<Endpoint> endpoints;
  std::vector<std::shared_ptr<Endpoint::State>> endpoint_states;  // parallel to endpoints
  std::unordered_map<EndpointId, size_t> by_id;
  std::vector<size_t> active;  // indexes of Active endpoints, in config order
  // Names of endpoints that left the config while sessions still pointed at them.
  std::unordered_map<EndpointId, std::string> departed;
  std::shared_ptr<RouteShared> shared;
  SessionStore* store = nullptr;
  std::string reason_missing_key;
  std::string reason_no_endpoint;
  std::string reason_endpoint_lost;

  // Active endpoints not marked down, except `exclude`.
  EligibleIds eligible(TimePoint now, EndpointId exclude) const {
    EligibleIds ids;
    for (size_t i : active) {
      const Endpoint& e = endpoints[i];
      if (e.id() != exclude && !e.isDown(now)) ids.push_back(e.id());
    }
    return ids;
  }

  // Other replicas' sessions on each of `ids` (in order), for LeastSessions with a fresh peer
  // load; otherwise empty (own counts only: no store, another policy, or a stale report).
  PeerCounts peerSessions(TimePoint now, const EligibleIds& ids) const {
    PeerCounts peers;
    if (config.placement != Placement::LeastSessions || !store ||
        ticks(now) >= shared->peer_load_until.load(std::memory_order_acquire)) {
      return peers;
    }
    for (EndpointId id : ids) {
      auto it = by_id.find(id);
      peers.push_back(it == by_id.end() ? 0
                                        : endpoint_states[it->second]->shared->peer_sessions.load(
                                              std::memory_order_relaxed));
    }
    return peers;
  }
};

namespace {

// Placement for a route's new or moved keys, evaluated under the key's shard lock.
class RoutePlacement final : public PlacementFn {
 public:
  RoutePlacement(const Route::State& route, TimePoint now, EndpointId exclude = 0)
      : route_(route), now_(now), exclude_(exclude) {}
  std::optional<EndpointId> place(std::string_view key) const override {
    EligibleIds ids = route_.eligible(now_, exclude_);
    PeerCounts peers = route_.peerSessions(now_, ids);
    return pick(route_.config.placement, hashKey(key), std::span(ids.data(), ids.size()),
                *route_.shared->table, route_.shared->round_robin,
                std::span(peers.data(), peers.size()));
  }

 private:
  const Route::State& route_;
  TimePoint now_;
  EndpointId exclude_;
};

class NoPlacement final : public PlacementFn {
 public:
  std::optional<EndpointId> place(std::string_view) const override {
    called = true;
    return std::nullopt;
  }
  mutable bool called = false;
};

RouteDecision reject(int status, std::string_view reason, std::string moved_from = {}) {
  RouteDecision d;
  d.verdict = Verdict::Reject;
  d.status = status;
  d.reason = reason;
  d.moved_from = std::move(moved_from);
  return d;
}

RouteDecision forward(const Endpoint& endpoint, bool pinned, std::string moved_from = {}) {
  endpoint.stats().requests.fetch_add(1, std::memory_order_relaxed);
  RouteDecision d;
  d.verdict = Verdict::Forward;
  d.endpoint = &endpoint;
  d.pinned = pinned;
  d.moved_from = std::move(moved_from);
  return d;
}

}  // namespace

RouteLabels splitRouteName(std::string_view route_name) {
  size_t slash = route_name.find('/');
  if (slash == std::string_view::npos) return {{}, route_name};
  return {route_name.substr(0, slash), route_name.substr(slash + 1)};
}

Route::Route(std::shared_ptr<State> state) : state_(std::move(state)) {}
const RouteConfig& Route::config() const {
  return state_->config;
}
RouteLabels Route::labels() const {
  return state_->labels;
}
std::span<const Endpoint> Route::endpoints() const {
  return state_->endpoints;
}
StickTable& Route::table() const {
  return *state_->shared->table;
}
RouteStats& Route::stats() const {
  return state_->shared->stats;
}
SharedTableStats& Route::sharedStats() const {
  return state_->shared->shared_stats;
}
SessionStore* Route::store() const {
  return state_->store;
}

void Route::setPeerLoad(const std::unordered_map<EndpointId, uint64_t>& sessions, uint64_t replicas,
                        TimePoint fresh_until) const {
  for (const auto& e : state_->endpoint_states) {
    auto it = sessions.find(e->id);
    e->shared->peer_sessions.store(it == sessions.end() ? 0 : it->second,
                                   std::memory_order_relaxed);
  }
  state_->shared->peer_replicas.store(replicas, std::memory_order_relaxed);
  state_->shared->peer_load_until.store(ticks(fresh_until), std::memory_order_release);
}

uint64_t Route::peerReplicas(TimePoint now) const {
  if (ticks(now) >= state_->shared->peer_load_until.load(std::memory_order_acquire)) return 0;
  return state_->shared->peer_replicas.load(std::memory_order_relaxed);
}

const Endpoint* Route::findEndpoint(EndpointId id) const {
  auto it = state_->by_id.find(id);
  return it == state_->by_id.end() ? nullptr : &state_->endpoints[it->second];
}

const Endpoint* Route::findEndpoint(std::string_view name) const {
  for (const Endpoint& e : state_->endpoints) {
    if (e.config().name == name) return &e;
  }
  return nullptr;
}

std::string_view Route::endpointName(EndpointId id) const {
  if (const Endpoint* e = findEndpoint(id)) return e->config().name;
  auto it = state_->departed.find(id);
  return it == state_->departed.end() ? std::string_view() : std::string_view(it->second);
}

namespace {

// The request of a session whose endpoint `from` is gone or down: reassign or reject it.
RouteDecision moveSession(const Route& route, const Route::State& s, std::string_view key,
                          EndpointId from, TimePoint now) {
  std::string_view from_name = route.endpointName(from);
  std::string moved_from(from_name.empty() ? kUnknownEndpoint : from_name);
  RouteStats& stats = s.shared->stats;
  StickTable& table = *s.shared->table;

  if (s.config.on_endpoint_lost == OnEndpointLost::Reject) {
    NoPlacement none;
    if (auto other = table.repin(key, from, now, none)) {
      // A concurrent request already re-pinned the session (a config flip from Reassign).
      const Endpoint* e = route.findEndpoint(other->endpoint);
      if (e && !e->isDown(now)) return forward(*e, true, std::move(moved_from));
    }
    if (none.called) {
      stats.moves.fetch_add(1, std::memory_order_relaxed);
      if (s.store) s.store->moved(s.config.name, key, from, 0, s.config.ttl);
    }
    return reject(503, s.reason_endpoint_lost, std::move(moved_from));
  }

  // Reassign. Without anywhere to go, keep the entry: the endpoint may come back up.
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (s.eligible(now, from).empty()) break;
    RoutePlacement placement(s, now, from);
    auto moved = table.repin(key, from, now, placement);
    if (!moved) break;
    const Endpoint* e = route.findEndpoint(moved->endpoint);
    if (moved->placed) {
      stats.moves.fetch_add(1, std::memory_order_relaxed);
      if (s.store) s.store->moved(s.config.name, key, from, moved->endpoint, s.config.ttl);
    }
    if (e && !e->isDown(now)) return forward(*e, true, std::move(moved_from));
    from = moved->endpoint;  // re-pinned by someone else onto an endpoint that is gone too
  }
  // The session stays where it was, so the answer does not say it moved.
  stats.no_endpoint.fetch_add(1, std::memory_order_relaxed);
  return reject(503, s.reason_no_endpoint);
}

// A request without a session key on a Balance route: spread it, creating no session.
RouteDecision balanceUnpinned(const Route::State& s, TimePoint now) {
  EligibleIds ids = s.eligible(now, 0);
  auto id = pickRoundRobin(s.shared->round_robin, std::span(ids.data(), ids.size()));
  if (!id) {
    s.shared->stats.no_endpoint.fetch_add(1, std::memory_order_relaxed);
    return reject(503, s.reason_no_endpoint);
  }
  auto it = s.by_id.find(*id);
  return forward(s.endpoints[it->second], false);
}

}  // namespace

RouteDecision Route::decide(std::optional<std::string_view> key, TimePoint now) const {
  const State& s = *state_;
  RouteStats& stats = s.shared->stats;
  stats.requests.fetch_add(1, std::memory_order_relaxed);
  if (!key) {
    if (s.config.on_missing_key == OnMissingKey::Reject) {
      stats.rejected_missing_key.fetch_add(1, std::memory_order_relaxed);
      return reject(400, s.reason_missing_key);
    }
    return balanceUnpinned(s, now);
  }
  RoutePlacement placement(s, now);
  if (s.store) {
    // A cache of the store's table: a hit is decided here, a miss asks the store (Claim).
    if (auto endpoint = s.shared->table->find(*key, now)) {
      const Endpoint* e = findEndpoint(*endpoint);
      if (e && !e->isDown(now)) return forward(*e, true);
      return moveSession(*this, s, *key, *endpoint, now);
    }
    auto candidate = placement.place(*key);
    if (!candidate) {
      stats.no_endpoint.fetch_add(1, std::memory_order_relaxed);
      return reject(503, s.reason_no_endpoint);
    }
    RouteDecision d;
    d.verdict = Verdict::Claim;
    d.candidate = *candidate;
    return d;
  }
  auto found = s.shared->table->lookupOrPlace(*key, now, placement);
  if (!found) {
    stats.no_endpoint.fetch_add(1, std::memory_order_relaxed);
    return reject(503, s.reason_no_endpoint);
  }
  if (found->placed) stats.placements.fetch_add(1, std::memory_order_relaxed);
  const Endpoint* e = findEndpoint(found->endpoint);
  if (e && !e->isDown(now)) return forward(*e, true);
  return moveSession(*this, s, *key, found->endpoint, now);
}

RouteDecision Route::settle(std::string_view key, EndpointId candidate, ClaimResult result,
                            TimePoint now) const {
  const State& s = *state_;
  SharedTableStats& shared = s.shared->shared_stats;
  StickTable& table = *s.shared->table;
  EndpointId endpoint = candidate;
  shared.claims.fetch_add(1, std::memory_order_relaxed);
  switch (result.source) {
    case ClaimResult::Source::Placed:
      s.shared->stats.placements.fetch_add(1, std::memory_order_relaxed);
      table.pin(key, endpoint, now);
      break;
    case ClaimResult::Source::Adopted:
      shared.adopted.fetch_add(1, std::memory_order_relaxed);
      [[fallthrough]];
    case ClaimResult::Source::Joined:
      endpoint = result.endpoint;
      table.pin(key, endpoint, now);
      break;
    case ClaimResult::Source::Unavailable:
      shared.unavailable.fetch_add(1, std::memory_order_relaxed);
      s.shared->stats.placements.fetch_add(1, std::memory_order_relaxed);
      table.pin(key, endpoint, now);
      table.markUnsynced(key);
      break;
  }
  const Endpoint* e = findEndpoint(endpoint);
  if (e && !e->isDown(now)) return forward(*e, true);
  return moveSession(*this, s, key, endpoint, now);
}

bool Route::evict(std::string_view key) const {
  bool erased = table().erase(key);
  if (state_->store) state_->store->erased(state_->config.name, key);
  return erased;
}

size_t Route::evictEndpoint(EndpointId endpoint) const {
  size_t erased = table().eraseEndpoint(endpoint);
  if (state_->store) state_->store->erasedEndpoint(state_->config.name, endpoint);
  return erased;
}

RouteDecision Route::failover(std::optional<std::string_view> key, const Endpoint& failed,
                              TimePoint now) const {
  const State& s = *state_;
  failed.markDown(now + s.endpoint_down_period);
  failed.stats().connect_failures.fetch_add(1, std::memory_order_relaxed);
  if (!key) {
    if (s.config.on_missing_key == OnMissingKey::Reject) return reject(400, s.reason_missing_key);
    return balanceUnpinned(s, now);
  }
  return moveSession(*this, s, *key, failed.id(), now);
}

void Route::recordResponse(const Endpoint& endpoint, int status,
                           std::chrono::microseconds upstream_latency) const {
  endpoint.stats().responses.count(static_cast<unsigned>(status));
  RouteStats& stats = state_->shared->stats;
  const int64_t us = std::max<int64_t>(upstream_latency.count(), 0);
  const double seconds = static_cast<double>(us) / 1e6;
  size_t bucket = kLatencyBuckets.size();  // +Inf
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) {
      bucket = i;
      break;
    }
  }
  stats.latency_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  stats.latency_count.fetch_add(1, std::memory_order_relaxed);
  stats.latency_sum_us.fetch_add(static_cast<uint64_t>(us), std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// Router

struct Router::State {
  ProxyConfig config;
  std::vector<Route> routes;
  std::vector<std::shared_ptr<Route::State>> route_states;  // parallel to routes
  std::unordered_map<std::string, size_t> by_name;
  RouteMatcher matcher;
};

Router::Router(std::unique_ptr<State> state) : state_(std::move(state)) {}
Router::~Router() = default;

const ProxyConfig& Router::config() const {
  return state_->config;
}
std::span<const Route> Router::routes() const {
  return state_->routes;
}

const Route* Router::findRoute(std::string_view name) const {
  auto it = state_->by_name.find(std::string(name));
  return it == state_->by_name.end() ? nullptr : &state_->routes[it->second];
}

const Route* Router::match(std::string_view host, std::string_view path) const {
  auto index = state_->matcher.match(host, path);
  return index ? &state_->routes[*index] : nullptr;
}

size_t Router::sweep(TimePoint now) const {
  size_t removed = 0;
  for (const Route& r : state_->routes) removed += r.table().sweep(now);
  return removed;
}

Result<std::shared_ptr<const Router>, ConfigErrors> Router::build(ProxyConfig config,
                                                                  const Router* previous,
                                                                  TimePoint /*now*/,
                                                                  SessionStore* store) {
  normalize(config);
  if (ConfigErrors errors = validate(config); !errors.empty()) {
    return unexpected(std::move(errors));
  }
  auto state = std::make_unique<State>();
  state->config = std::move(config);
  const ProxyConfig& c = state->config;
  state->routes.reserve(c.routes.size());
  for (size_t i = 0; i < c.routes.size(); ++i) {
    const RouteConfig& rc = c.routes[i];
    const Route::State* prev = nullptr;
    if (previous) {
      auto it = previous->state_->by_name.find(rc.name);
      if (it != previous->state_->by_name.end())
        prev = previous->state_->route_states[it->second].get();
    }
    auto rs = std::make_shared<Route::State>();
    rs->config = rc;
    rs->labels = splitRouteName(rs->config.name);
    rs->store = store;
    rs->endpoint_down_period = c.limits.endpoint_down_period;
    if (prev) {
      rs->shared = prev->shared;
      rs->shared->table->setLimits(rc.ttl, rc.max_sessions);
    } else {
      rs->shared = std::make_shared<RouteShared>(rc);
    }
    rs->endpoints.reserve(rc.endpoints.size());
    for (const EndpointConfig& ec : rc.endpoints) {
      auto es = std::make_shared<Endpoint::State>();
      es->config = ec;
      es->id = endpointId(ec);
      boost::system::error_code ec_parse;
      auto address = boost::asio::ip::make_address(ec.address, ec_parse);  // validated above
      es->address = boost::asio::ip::tcp::endpoint(address, ec.port);
      std::shared_ptr<EndpointShared> carried;
      if (prev) {
        if (auto it = prev->by_id.find(es->id); it != prev->by_id.end()) {
          carried = prev->endpoint_states[it->second]->shared;
        }
      }
      es->shared = carried ? std::move(carried) : std::make_shared<EndpointShared>();
      rs->by_id.emplace(es->id, rs->endpoints.size());
      if (ec.state == EndpointState::Active) rs->active.push_back(rs->endpoints.size());
      rs->endpoint_states.push_back(es);
      rs->endpoints.emplace_back(std::move(es));
    }
    if (prev) {
      // Remember who left, for the moved-from header, while sessions still point at them.
      const StickTable& table = *rs->shared->table;
      auto keep = [&](EndpointId id, std::string_view name) {
        if (!rs->by_id.contains(id) && table.sessionsOf(id) > 0) {
          rs->departed.emplace(id, std::string(name));
        }
      };
      for (const auto& [id, name] : prev->departed) keep(id, name);
      for (const Endpoint& e : prev->endpoints) keep(e.id(), e.config().name);
    }
    rs->reason_missing_key = "this request has no \"" + rc.header + "\" header; route " + rc.name +
                             " needs it to keep the session on one endpoint";
    rs->reason_no_endpoint = "route " + rc.name + " has no active endpoint";
    rs->reason_endpoint_lost =
        "the endpoint of this session is gone; retry the request to start a new session";
    state->by_name.emplace(rc.name, i);
    state->route_states.push_back(rs);
    state->routes.emplace_back(std::move(rs));
  }
  state->matcher = RouteMatcher(c.routes);
  return std::shared_ptr<const Router>(std::make_shared<Router>(std::move(state)));
}

// ---------------------------------------------------------------------------------------------
// RouterHolder

std::shared_ptr<const Router> RouterHolder::current() const {
  std::lock_guard lock(mu_);
  return router_;
}

Result<Ok, ConfigErrors> RouterHolder::apply(ProxyConfig config, TimePoint now) {
  std::lock_guard lock(mu_);  // serializes applies; readers wait only for this build
  auto built = Router::build(std::move(config), router_.get(), now, store_);
  if (!built) return unexpected(std::move(built).error());
  router_ = std::move(built).value();
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return Ok{};
}

}  // namespace sticky::proxy
