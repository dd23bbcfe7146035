// RedisSessionStore: the shared stick table's Redis side. The claims (the miss path, on the
// workers' lanes) are in redis_claims.cc. Everything here runs on the store's own thread (the
// main client's io_context): events, moves, evictions, the census, the refresh round and
// re-assertion. The local tables it touches are thread-safe; the
// router is read through RouterHolder, so a config swap never races it.

#include "routing/redis_store.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "redis/tls.h"

namespace sticky::proxy {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

// KEYS[1] session; ARGV: from, to ("" = drop), px, channel, event. Moves only if the session is
// unset or still on `from`; returns the endpoint that holds it afterwards ("" when dropped).
constexpr std::string_view kMoveScript = R"lua(
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return cur end
if ARGV[2] == '' then redis.call('DEL', KEYS[1])
else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return ARGV[2]
)lua";

// KEYS[1] session; ARGV: mine, px. 1: extended; 0: missing; otherwise the value that is there.
constexpr std::string_view kRefreshScript = R"lua(
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if cur ~= ARGV[1] then return cur end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
)lua";

// KEYS[1] session; ARGV[1] value. Deletes it only if it still holds the value.
constexpr std::string_view kDeleteIfScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

// KEYS[1] load hash; ARGV: replica id, its counts, PEXPIRE ms. Stamps the counts with Redis's
// clock (so freshness never depends on the replicas' clocks agreeing) and returns
// {now_ms, field, value, ...} of the other replicas' fields.
constexpr std::string_view kLoadScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d %s', now, ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
local out = {now}
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
)lua";

constexpr size_t kRefreshBatch = 10000;  // keys per round and route
constexpr size_t kReassertBatch = 1000;  // SET NX GET per pipelined batch
constexpr std::string_view kScanCount = "1000";

// `*`, `?`, `[`, `]` and `\` in a SCAN MATCH pattern are taken literally when escaped.
std::string globEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string makeReplicaId() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::random_device random;
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", random());
  return std::string(host[0] ? host : "proxy") + "/" + std::to_string(::getpid()) + "/" + suffix;
}

std::vector<std::string> splitEvent(std::string_view payload) {
  // op \n replica \n route \n arg \n key (the key last: it may hold anything but CR/LF)
  std::vector<std::string> parts;
  for (int i = 0; i < 4; ++i) {
    size_t nl = payload.find('\n');
    if (nl == std::string_view::npos) return {};
    parts.emplace_back(payload.substr(0, nl));
    payload.remove_prefix(nl + 1);
  }
  parts.emplace_back(payload);
  return parts;
}

}  // namespace

Result<redis::ClientOptions> redisClientOptions(const RedisConfig& config) {
  redis::ClientOptions o;
  if (!config.address.empty()) {
    auto address = redis::Address::parse(config.address);
    if (!address) return fail("sharedTable.redis.address: " + address.error().message);
    o.addresses.push_back(*address);
  }
  for (const std::string& s : config.sentinels) {
    auto address = redis::Address::parse(s, 26379);
    if (!address) return fail("sharedTable.redis.sentinels: " + address.error().message);
    o.sentinels.push_back(*address);
  }
  o.master_name = config.master_name;
  o.username = config.username;
  if (!config.password_file.empty()) {
    std::ifstream in(config.password_file);
    if (!in) {
      return fail("cannot read the Redis password file " + config.password_file +
                  "; mount the Secret there or leave passwordFile empty for no AUTH");
    }
    std::stringstream text;
    text << in.rdbuf();
    o.password = text.str();
    while (!o.password.empty() && (o.password.back() == '\n' || o.password.back() == '\r'))
      o.password.pop_back();
    if (o.password.empty()) {
      return fail("the Redis password file " + config.password_file + " is empty");
    }
  }
  if (config.tls) {
    auto tls = redis::TlsContext::create({.ca_file = config.ca_file,
                                          .server_name = config.server_name,
                                          .insecure_skip_verify = config.insecure_skip_verify,
                                          .cert_file = config.cert_file,
                                          .key_file = config.key_file});
    if (!tls) return fail("sharedTable.redis: " + tls.error().message);
    o.tls = std::move(*tls);
  }
  o.connect_timeout = std::chrono::duration_cast<milliseconds>(config.connect_timeout);
  o.command_timeout = std::chrono::duration_cast<milliseconds>(config.command_timeout);
  o.channels = {config.key_prefix + "events"};
  auto valid = o.validate();
  if (!valid) return fail("sharedTable.redis: " + valid.error().message);
  return o;
}

// ---------------------------------------------------------------------------------------------

RedisSessionStore::RedisSessionStore(const RedisConfig& config, redis::ClientOptions options,
                                     std::string replica_id, RouterHolder& routers)
    : prefix_(config.key_prefix),
      channel_(config.key_prefix + "events"),
      settle_deadline_(SteadyClock::now() + 2 * options.connect_timeout),
      replica_id_(std::move(replica_id)),
      lane_options_(options),
      routers_(routers),
      client_stats_(std::make_shared<redis::RedisStats>()),
      client_(std::make_unique<redis::Client>(io_, std::move(options), client_stats_)) {}

Result<std::unique_ptr<RedisSessionStore>> RedisSessionStore::start(const RedisConfig& config,
                                                                    RouterHolder& routers) {
  auto options = redisClientOptions(config);
  if (!options) return fail(options.error().message);
  std::string replica_id = makeReplicaId();
  options->client_name = replica_id;
  std::unique_ptr<RedisSessionStore> store(
      new RedisSessionStore(config, std::move(*options), std::move(replica_id), routers));
  RedisSessionStore* s = store.get();
  s->lane_options_.channels.clear();
  s->client_->onConnected([s](uint64_t epoch) {
    logInfo("shared table: connected to Redis",
            {{"primary", s->client_->primary()}, {"epoch", std::to_string(epoch)}});
    // Whatever this replica holds goes back to Redis: it may have restarted empty, a failover
    // may have lost writes, and entries placed while it was away are unsynced.
    auto router = s->routers_.current();
    if (!router) return;
    for (const Route& route : router->routes()) {
      auto entries = route.table().dump(SIZE_MAX, SteadyClock::now());
      if (!entries.empty()) s->reassert(route.config().name, std::move(entries), 0);
    }
  });
  s->client_->onDisconnected([s] {
    logWarn("shared table: lost Redis; placing new sessions locally until it is back",
            {{"primary", s->client_->primary()}});
  });
  s->client_->onMessage([s](std::string_view, std::string_view payload) { s->onEvent(payload); });
  s->client_->onSubscribed([s, first = true]() mutable {
    if (first) {
      first = false;
      return;
    }
    // Events published while the subscription was down are lost: have the next refresh round
    // check every recently used entry against Redis (adopting what moved).
    if (auto router = s->routers_.current()) {
      const TimePoint now = SteadyClock::now();
      for (const Route& route : router->routes()) {
        route.table().markAllUnsynced(now, redisMargin(route.config().ttl));
      }
    }
    logInfo("shared table: events resubscribed; recent entries re-checked against Redis");
  });
  s->client_->start();
  s->scheduleRefresh();
  s->thread_ = std::thread([s] { s->io_.run(); });
  return store;
}

RedisSessionStore::~RedisSessionStore() {
  stop();
}

void RedisSessionStore::stop() {
  std::call_once(stopped_, [this] {
    client_->stop();
    asio::post(io_, [this] { refresh_timer_.cancel(); });
    // Let the client's close and the failed claims' callbacks run, then end the thread.
    asio::post(io_, [this] { io_.stop(); });
    if (thread_.joinable()) thread_.join();
  });
}

bool RedisSessionStore::connected() const {
  return client_->connected() && lanes_up_.load() == lanes_attached_.load();
}

bool RedisSessionStore::startupSettled() const {
  if (ever_connected_.load()) return true;
  if (connected()) {
    ever_connected_.store(true);
    return true;
  }
  return SteadyClock::now() >= settle_deadline_;
}

std::string RedisSessionStore::primary() const {
  return client_->primary();
}

void RedisSessionStore::moved(std::string_view route, std::string_view key, EndpointId from,
                              EndpointId to, milliseconds ttl) {
  stats_.moves.fetch_add(1, std::memory_order_relaxed);
  std::string to_value = to ? endpointValue(to) : std::string();
  std::string event = std::string(to ? "moved" : "erased") + "\n" + replica_id_ + "\n" +
                      std::string(route) + "\n" + to_value + "\n" + std::string(key);
  redis::Command command{"EVAL",
                         std::string(kMoveScript),
                         "1",
                         sessionKey(prefix_, route, key),
                         endpointValue(from),
                         to_value,
                         sessionPx(ttl),
                         channel_,
                         std::move(event)};
  client_->execute(std::move(command), [this, route = std::string(route), key = std::string(key),
                                        to_value](redis::CommandResult reply) {
    if (!reply || !reply->isString()) return;  // unavailable: the refresh round reconciles
    if (reply->text == to_value) {
      stats_.events_sent.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    stats_.move_conflicts.fetch_add(1, std::memory_order_relaxed);
    adopt(route, key, reply->text);
  });
}

void RedisSessionStore::erased(std::string_view route, std::string_view key) {
  client_->execute({"DEL", sessionKey(prefix_, route, key)}, [](redis::CommandResult) {});
  publish("erased", route, "", key);
}

void RedisSessionStore::erasedEndpoint(std::string_view route, EndpointId endpoint) {
  publish("erased-endpoint", route, endpointValue(endpoint), "");
  std::string pattern = globEscape(sessionKey(prefix_, route, "")) + "*";
  asio::post(io_, [this, route = std::string(route), pattern, value = endpointValue(endpoint)] {
    scanAndDelete(route, pattern, value, "0");
  });
}

void RedisSessionStore::scanAndDelete(std::string route, std::string pattern, std::string value,
                                      std::string cursor) {
  redis::Command scan{"SCAN", cursor, "MATCH", pattern, "COUNT", std::string(kScanCount)};
  client_->execute(std::move(scan), [this, route, pattern, value](redis::CommandResult reply) {
    if (!reply || !reply->isList() || reply->elements.size() != 2) {
      logWarn(
          "shared table: could not scan Redis to evict an endpoint's sessions; replicas "
          "dropped their copies and the keys expire with their TTL",
          {{"route", route}});
      return;
    }
    std::string next = reply->elements[0].text;
    std::vector<redis::Command> deletes;
    for (const redis::RespValue& key : reply->elements[1].elements) {
      deletes.push_back({"EVAL", std::string(kDeleteIfScript), "1", key.text, value});
    }
    auto cont = [this, route, pattern, value, next](std::vector<redis::CommandResult>) {
      if (next != "0") scanAndDelete(route, pattern, value, next);
    };
    if (deletes.empty()) {
      cont({});
    } else {
      client_->executeBatch(std::move(deletes), std::move(cont));
    }
  });
}

std::shared_ptr<const SessionCensus> RedisSessionStore::census() {
  std::lock_guard lock(census_mu_);
  const bool stale = !census_ || SteadyClock::now() - census_->taken >= kCensusInterval;
  if (stale && !census_running_ && client_->connected()) {
    census_running_ = true;
    asio::post(io_, [this] { censusStep(std::make_shared<SessionCensus>(), "0"); });
  }
  return census_;
}

// One SCAN over the prefix for every route at once (a SCAN walks the whole keyspace whatever
// its MATCH), then one pipelined GET per key found: COUNT 1000 keeps each step short for Redis.
void RedisSessionStore::censusStep(std::shared_ptr<SessionCensus> work, std::string cursor) {
  redis::Command scan{"SCAN", std::move(cursor), "MATCH", globEscape(prefix_) + "*", "COUNT",
                      "1000"};
  client_->execute(std::move(scan), [this, work](redis::CommandResult reply) {
    if (!reply || !reply->isList() || reply->elements.size() != 2 || !reply->elements[1].isList()) {
      logWarn("shared table: counting the sessions in Redis failed; the stats keep the last count",
              {{"error", reply ? std::string("unexpected SCAN reply") : reply.error().message}});
      std::lock_guard lock(census_mu_);
      census_running_ = false;
      return;
    }
    std::string next = reply->elements[0].text;
    std::vector<std::string> routes;  // route name of each GET, in order
    std::vector<redis::Command> gets;
    const std::string load_prefix = loadKey(prefix_, "");
    for (const redis::RespValue& key : reply->elements[1].elements) {
      // <prefix><route>:<key>; route names (namespace/name) hold no ':'. Not the load hashes.
      if (key.text.size() <= prefix_.size() || key.text.starts_with(load_prefix)) continue;
      std::string_view rest = std::string_view(key.text).substr(prefix_.size());
      size_t colon = rest.find(':');
      if (colon == std::string_view::npos) continue;
      routes.emplace_back(rest.substr(0, colon));
      gets.push_back({"GET", key.text});
    }
    auto counted = [this, work, next, routes](std::vector<redis::CommandResult> values) {
      for (size_t i = 0; i < values.size() && i < routes.size(); ++i) {
        if (!values[i] || !values[i]->isString()) continue;  // expired since the SCAN
        SessionCensus::RouteCount& count = work->routes[routes[i]];
        ++count.total;
        if (auto id = parseEndpointValue(values[i]->text)) ++count.by_endpoint[*id];
      }
      if (next == "0") {
        finishCensus(work);
      } else {
        censusStep(work, next);
      }
    };
    if (gets.empty()) {
      counted({});
    } else {
      client_->executeBatch(std::move(gets), std::move(counted));
    }
  });
}

void RedisSessionStore::finishCensus(std::shared_ptr<SessionCensus> work) {
  work->taken = SteadyClock::now();
  std::lock_guard lock(census_mu_);
  census_ = std::move(work);
  census_running_ = false;
}

void RedisSessionStore::publish(std::string_view op, std::string_view route, std::string_view arg,
                                std::string_view key) {
  std::string event = std::string(op) + "\n" + replica_id_ + "\n" + std::string(route) + "\n" +
                      std::string(arg) + "\n" + std::string(key);
  client_->execute({"PUBLISH", channel_, std::move(event)}, [this](redis::CommandResult reply) {
    if (reply) stats_.events_sent.fetch_add(1, std::memory_order_relaxed);
  });
}

void RedisSessionStore::onEvent(std::string_view payload) {
  auto parts = splitEvent(payload);
  if (parts.size() != 5 || parts[1] == replica_id_) return;
  auto router = routers_.current();
  const Route* route = router ? router->findRoute(parts[2]) : nullptr;
  if (!route) return;
  const std::string& op = parts[0];
  // Dropping the copy of a moved session is no eviction: the next request here asks Redis,
  // which has the new answer. Another replica's admin evictions are (reason "replica").
  if (op == "moved") {
    route->table().erase(parts[4]);
  } else if (op == "erased") {
    if (route->table().erase(parts[4]))
      route->stats().replica_evictions.fetch_add(1, std::memory_order_relaxed);
  } else if (op == "erased-endpoint") {
    if (auto id = parseEndpointValue(parts[3])) {
      size_t erased = route->table().eraseEndpoint(*id);
      route->stats().replica_evictions.fetch_add(erased, std::memory_order_relaxed);
    }
  } else {
    return;
  }
  stats_.events_applied.fetch_add(1, std::memory_order_relaxed);
}

void RedisSessionStore::adopt(std::string_view route_name, std::string_view key,
                              std::string_view value) {
  auto id = parseEndpointValue(value);
  auto router = routers_.current();
  const Route* route = router ? router->findRoute(route_name) : nullptr;
  if (!id || !route) return;
  stats_.conflicts.fetch_add(1, std::memory_order_relaxed);
  route->table().pin(key, *id, SteadyClock::now());
}

void RedisSessionStore::scheduleRefresh() {
  refresh_timer_.expires_after(kRefreshRound);
  refresh_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    refreshRound();
    scheduleRefresh();
  });
}

void RedisSessionStore::refreshRound() {
  // Skipped while Redis is away (the entries stay due) or the last round is still out.
  if (!client_->connected()) return;
  publishLoads();
  if (refreshes_in_flight_.load() > 0) return;
  auto router = routers_.current();
  if (!router) return;
  const TimePoint now = SteadyClock::now();
  for (const Route& route : router->routes()) {
    const milliseconds ttl = route.config().ttl;
    auto due = route.table().takeRefreshes(now, redisMargin(ttl), kRefreshBatch);
    if (due.empty()) continue;
    std::vector<redis::Command> commands;
    commands.reserve(due.size());
    const std::string name = route.config().name;
    const std::string expiry = sessionPx(ttl);
    for (const SessionEntry& e : due) {
      commands.push_back({"EVAL", std::string(kRefreshScript), "1",
                          sessionKey(prefix_, name, e.key), endpointValue(e.endpoint), expiry});
    }
    refreshes_in_flight_.fetch_add(1);
    stats_.refresh_batches.fetch_add(1, std::memory_order_relaxed);
    stats_.refresh_batch_keys.fetch_add(due.size(), std::memory_order_relaxed);
    client_->executeBatch(std::move(commands), [this, name, due = std::move(due)](
                                                   std::vector<redis::CommandResult> replies) {
      refreshes_in_flight_.fetch_sub(1);
      std::vector<SessionEntry> missing;
      auto router = routers_.current();
      const Route* route = router ? router->findRoute(name) : nullptr;
      for (size_t i = 0; i < replies.size() && i < due.size(); ++i) {
        const redis::CommandResult& r = replies[i];
        if (!r || r->isError()) {
          if (route) route->table().markUnsynced(due[i].key);  // try again next round
        } else if (r->type == redis::RespType::Integer) {
          if (r->integer == 1) {
            stats_.refreshed.fetch_add(1, std::memory_order_relaxed);
          } else {
            missing.push_back(due[i]);
          }
        } else if (r->isString()) {
          adopt(name, due[i].key, r->text);
        }
      }
      if (!missing.empty()) reassert(name, std::move(missing), 0);
    });
  }
}

// One script per LeastSessions route, pipelined: publish this replica's counts, read the others'.
// A route that another policy places publishes nothing (its placement ignores the counts).
void RedisSessionStore::publishLoads() {
  if (loads_in_flight_) return;
  auto router = routers_.current();
  if (!router) return;
  std::vector<std::string> names;
  std::vector<redis::Command> commands;
  for (const Route& route : router->routes()) {
    if (route.config().placement != Placement::LeastSessions) continue;
    EndpointCounts counts;
    for (const Endpoint& e : route.endpoints()) {
      counts.emplace_back(e.id(), route.table().sessionsOf(e.id()));
    }
    names.push_back(route.config().name);
    commands.push_back({"EVAL", std::string(kLoadScript), "1", loadKey(prefix_, names.back()),
                        replica_id_, encodeLoadCounts(counts),
                        std::to_string(kPeerLoadGone.count())});
  }
  if (commands.empty()) return;
  loads_in_flight_ = true;
  client_->executeBatch(std::move(commands), [this, names = std::move(names)](
                                                 std::vector<redis::CommandResult> replies) {
    loads_in_flight_ = false;
    const TimePoint fresh_until = SteadyClock::now() + kPeerLoadFresh;
    auto router = routers_.current();
    for (size_t i = 0; i < replies.size() && i < names.size(); ++i) {
      const redis::CommandResult& r = replies[i];
      const Route* route = router ? router->findRoute(names[i]) : nullptr;
      if (r && r->isError() && !load_refused_) {
        load_refused_ = true;  // once until a script succeeds: an ACL or a Redis without Lua
        logWarn(
            "shared table: Redis refused the session-count script; LeastSessions places on this "
            "replica's own counts (allow TIME, HSET, PEXPIRE, HGETALL, HDEL for the ACL user)",
            {{"route", names[i]}, {"reply", redis::describe(*r)}});
      }
      // Unanswered: the route keeps its last peer load until it goes stale.
      if (!route || !r || !r->isList() || r->elements.empty() ||
          r->elements[0].type != redis::RespType::Integer) {
        continue;
      }
      load_refused_ = false;
      std::vector<std::pair<std::string, std::string>> fields;
      for (size_t f = 1; f + 1 < r->elements.size(); f += 2) {
        fields.emplace_back(r->elements[f].text, r->elements[f + 1].text);
      }
      PeerLoad load = sumPeerLoad(fields, replica_id_, r->elements[0].integer);
      route->setPeerLoad(load.sessions, load.replicas, fresh_until);
      if (!load.gone.empty()) {
        redis::Command hdel{"HDEL", loadKey(prefix_, names[i])};
        hdel.insert(hdel.end(), load.gone.begin(), load.gone.end());
        client_->execute(std::move(hdel), [](redis::CommandResult) {});
      }
    }
  });
}

void RedisSessionStore::reassert(std::string route, std::vector<SessionEntry> entries,
                                 size_t from) {
  auto router = routers_.current();
  const Route* r = router ? router->findRoute(route) : nullptr;
  if (!r) return;
  const milliseconds ttl = r->config().ttl;
  const size_t to = std::min(entries.size(), from + kReassertBatch);
  std::vector<redis::Command> commands;
  for (size_t i = from; i < to; ++i) {
    const SessionEntry& e = entries[i];
    milliseconds left = std::max(sessionLifetime(ttl) - e.idle, milliseconds(1));
    commands.push_back({"SET", sessionKey(prefix_, route, e.key), endpointValue(e.endpoint), "NX",
                        "PX", std::to_string(left.count()), "GET"});
  }
  auto shared = std::make_shared<std::vector<SessionEntry>>(std::move(entries));
  client_->executeBatch(std::move(commands), [this, route, shared, from,
                                              to](std::vector<redis::CommandResult> replies) {
    bool failed = false;
    for (size_t i = 0; i < replies.size(); ++i) {
      const redis::CommandResult& reply = replies[i];
      const SessionEntry& e = (*shared)[from + i];
      if (!reply) {
        failed = true;
      } else if (reply->isNull()) {
        stats_.reasserted.fetch_add(1, std::memory_order_relaxed);
      } else if (reply->isString() && reply->text != endpointValue(e.endpoint)) {
        adopt(route, e.key, reply->text);
      }
    }
    // Disconnected again: the next connection re-asserts everything anyway.
    if (!failed && to < shared->size()) reassert(route, std::move(*shared), to);
  });
}

}  // namespace sticky::proxy
