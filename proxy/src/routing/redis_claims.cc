// RedisSessionStore's miss path: claims (SET NX GET) on the asking worker's own connection, its
// lane (attachWorker), or from any other thread on the store's connection. Single flight per
// key within a lane, or within the store for the other threads. The rest of the store is in
// redis_store.cc.

#include <charconv>
#include <future>
#include <span>
#include <utility>

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "routing/redis_store.h"

namespace sticky::proxy {

namespace asio = boost::asio;
using std::chrono::milliseconds;

thread_local const RedisSessionStore* RedisSessionStore::tl_store_ = nullptr;
thread_local RedisSessionStore::Lane* RedisSessionStore::tl_lane_ = nullptr;

void RedisSessionStore::attachWorker(asio::io_context& io, size_t index) {
  auto lane = std::make_unique<Lane>();
  redis::ClientOptions options = lane_options_;
  options.client_name += ":claims-" + std::to_string(index);
  lane->client = std::make_unique<redis::Client>(io, std::move(options), client_stats_);
  Lane* l = lane.get();
  // Callbacks run on the worker's thread, as everything of the lane does.
  l->client->onConnected([this, l](uint64_t) {
    if (!std::exchange(l->up, true)) lanes_up_.fetch_add(1);
  });
  l->client->onDisconnected([this, l] {
    if (std::exchange(l->up, false)) lanes_up_.fetch_sub(1);
  });
  asio::post(io, [this, l] {
    tl_store_ = this;
    tl_lane_ = l;
  });
  l->client->start();
  lanes_.emplace_back(&io, std::move(lane));
  lanes_attached_.fetch_add(1);
}

void RedisSessionStore::detachWorkers() {
  for (auto& [io, lane] : lanes_) {
    // The client is stopped and destroyed on the worker's thread: its sockets and timers belong
    // to that io_context, which runs them from that thread only.
    std::promise<void> closed;
    std::future<void> done = closed.get_future();
    asio::post(*io, [this, l = lane.get(), &closed] {
      tl_store_ = nullptr;
      tl_lane_ = nullptr;
      l->client->stop();  // pending claims complete (Unavailable) and leave l->inflight
      l->client.reset();
      if (std::exchange(l->up, false)) lanes_up_.fetch_sub(1);
      closed.set_value();
    });
    done.wait();
  }
}

namespace {

redis::Command claimCommand(std::string redis_key, EndpointId candidate, milliseconds ttl) {
  return {"SET", std::move(redis_key), endpointValue(candidate), "NX", "PX", sessionPx(ttl), "GET"};
}

// Every asker of one key gets the first asker's answer (as Joined after the first).
void answer(SessionStore::ClaimDone& first, std::span<SessionStore::ClaimDone> joined,
            ClaimResult result) {
  first(result);
  if (result.source != ClaimResult::Source::Unavailable)
    result.source = ClaimResult::Source::Joined;
  for (SessionStore::ClaimDone& done : joined) done(result);
}

}  // namespace

void RedisSessionStore::claim(std::string_view route, std::string_view key, EndpointId candidate,
                              milliseconds ttl, ClaimDone done) {
  std::string redis_key = sessionKey(prefix_, route, key);
  if (tl_store_ == this && tl_lane_ != nullptr) {
    claimOnLane(*tl_lane_, std::move(redis_key), candidate, ttl, std::move(done));
    return;
  }
  {
    std::lock_guard lock(inflight_mu_);
    auto& waiters = inflight_[redis_key];
    waiters.push_back(std::move(done));
    if (waiters.size() > 1) return;  // single flight: the first asker's answer is everyone's
  }
  client_->execute(claimCommand(redis_key, candidate, ttl),
                   [this, redis_key, candidate](redis::CommandResult reply) mutable {
                     finishClaim(redis_key, candidate, std::move(reply));
                   });
}

void RedisSessionStore::claimOnLane(Lane& lane, std::string redis_key, EndpointId candidate,
                                    milliseconds ttl, ClaimDone done) {
  auto [at, first] = lane.inflight.try_emplace(std::move(redis_key));
  Flight& flight = at->second;
  if (!first) {  // single flight within this worker
    flight.joined.push_back(std::move(done));
    return;
  }
  flight = {&lane, &at->first, candidate, std::move(done), {}};
  char value[16];
  writeEndpointValue(candidate, value);
  char expiry[24];
  auto written = std::to_chars(expiry, expiry + sizeof expiry, sessionLifetime(ttl).count());
  lane.scratch.clear();
  redis::encodeCommand(lane.scratch, {"SET",
                                      at->first,
                                      {value, sizeof value},
                                      "NX",
                                      "PX",
                                      {expiry, static_cast<size_t>(written.ptr - expiry)},
                                      "GET"});
  // executeHere: no post, the reply comes back on this thread. Without a connection the
  // callback runs before executeHere returns; nothing here is used after it.
  lane.client->executeHere(
      lane.scratch, [this, f = &flight](redis::CommandResult reply) { finishFlight(*f, reply); });
}

void RedisSessionStore::finishFlight(Flight& flight, const redis::CommandResult& reply) {
  ClaimResult result = claimResult(*flight.redis_key, flight.candidate, reply);
  ClaimDone first = std::move(flight.first);
  std::vector<ClaimDone> joined = std::move(flight.joined);
  Lane& lane = *flight.lane;
  lane.inflight.erase(lane.inflight.find(*flight.redis_key));  // `flight` is gone from here
  answer(first, joined, result);
}

ClaimResult RedisSessionStore::claimResult(const std::string& redis_key, EndpointId candidate,
                                           const redis::CommandResult& reply) const {
  if (reply && reply->isNull()) return {candidate, ClaimResult::Source::Placed};
  if (reply && reply->isString()) {
    if (auto id = parseEndpointValue(reply->text)) return {*id, ClaimResult::Source::Adopted};
    logWarn("shared table: a session key in Redis holds something else; placing locally",
            {{"key", redis_key}});
  } else if (reply && reply->text.rfind("READONLY", 0) != 0) {  // READONLY: the client logs it
    // An error reply: most likely a Redis older than 7.0, which has no SET ... NX GET.
    logWarn(
        "shared table: Redis refused SET NX GET (it needs Redis >= 7.0 or Valkey); "
        "placing locally",
        {{"reply", redis::describe(*reply)}});
  }
  return {candidate, ClaimResult::Source::Unavailable};
}

void RedisSessionStore::finishClaim(const std::string& redis_key, EndpointId candidate,
                                    redis::CommandResult reply) {
  ClaimResult result = claimResult(redis_key, candidate, reply);
  std::vector<ClaimDone> waiters;
  {
    std::lock_guard lock(inflight_mu_);
    auto it = inflight_.find(redis_key);
    if (it != inflight_.end()) {
      waiters = std::move(it->second);
      inflight_.erase(it);
    }
  }
  if (!waiters.empty()) answer(waiters.front(), std::span(waiters).subspan(1), result);
}

}  // namespace sticky::proxy
