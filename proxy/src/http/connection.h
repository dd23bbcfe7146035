#pragma once
// The per-worker context of the forwarding path, and what it asks of a client connection.
//
// One coroutine per client connection, on its worker's io_context, in pieces:
//   client_connection.h  the connection loop: keep-alive, head read (limits, timeouts), drain
//   exchange.h           routing step, request body, upstream exchange, failover
//   response_relay.h     response head rewrite and body relay
//   tunnel.h             the raw byte tunnel after a 101 to an Upgrade
//   local_reply.h        the one table of the proxy's own replies (status, counter, sentence)
//   read_progress.h      the one "read until the parser makes progress" loop
//   downstream.h         the client side's state the pieces share
// Nothing on this path throws: every operation reports an error_code, and bad client input is
// answered 4xx and counted.
//
// Timeouts cost nothing per operation: a connection keeps the time its pending operation must
// finish by, and one sweep timer per worker (every kDeadlineTick, while connections exist)
// cancels the operations whose time has passed.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/proxy_config.h"
#include "http/access_log.h"
#include "http/server_stats.h"
#include "http/upstream_pool.h"
#include "routing/router.h"

namespace sticky::proxy {

/// Size of the buffer a body is relayed through (per direction, per connection in flight).
inline constexpr size_t kRelayPieceSize = 32 * 1024;

/// How often a worker looks for connections past their deadline: the precision of every timeout.
inline constexpr auto kDeadlineTick = std::chrono::milliseconds(50);

/// What the forwarding path can ask of a live client connection (for drain and shutdown).
class ClientConnection {
 public:
  virtual ~ClientConnection() = default;
  /// Closes the connection if it is waiting for a request (nothing in flight).
  virtual void closeIfIdle() = 0;
  /// Closes the client and upstream sockets now.
  virtual void close() = 0;
  /// Cancels the pending operation if its deadline is before `now` (the worker's sweep).
  virtual void checkDeadline(TimePoint now) = 0;
};

/// Per-worker state shared by that worker's connections. Single-threaded (the worker's thread).
class ForwardingContext {
 public:
  ForwardingContext(boost::asio::io_context& io, RouterHolder& routers, ServerStats& stats);
  ForwardingContext(const ForwardingContext&) = delete;
  ForwardingContext& operator=(const ForwardingContext&) = delete;

  boost::asio::io_context& io() { return io_; }
  ServerStats& stats() { return stats_; }
  UpstreamPool& pool() { return pool_; }

  /// This worker's snapshot of the current Router, null before a config is loaded. Re-read from
  /// the holder only when its generation changes; copies share a worker-local count, so holding
  /// one per request costs no cross-thread traffic.
  std::shared_ptr<const Router> router();
  /// The current config's limits (defaults before a config is loaded).
  const Limits& limits();

  /// This worker's access log, null when it is off (the one branch each hook pays).
  AccessLogWriter* accessLog() { return access_log_.get(); }
  /// Turns the access log on for this worker's connections from now on (before start).
  void enableAccessLog(AccessLogSink& sink);

  /// Starts a coroutine serving `socket` until it closes.
  void serve(boost::asio::ip::tcp::socket socket);

  /// Drain: connections finish their request in flight and then close; idle ones close now.
  void startDraining();
  bool draining() const { return draining_; }
  /// Closes every connection and pooled upstream connection.
  void closeAll();
  /// Live client connections; safe to read from any thread.
  size_t connections() const { return live_.load(std::memory_order_acquire); }

  // For ClientConnection implementations.
  void add(ClientConnection* c) {
    connections_.insert(c);
    live_.store(connections_.size(), std::memory_order_release);
    if (!sweeping_) scheduleSweep();
  }
  void remove(ClientConnection* c) {
    connections_.erase(c);
    live_.store(connections_.size(), std::memory_order_release);
  }
  std::unique_ptr<char[]> takePiece();
  void returnPiece(std::unique_ptr<char[]> piece);

 private:
  void scheduleSweep();

  boost::asio::io_context& io_;
  RouterHolder& routers_;
  ServerStats& stats_;
  UpstreamPool pool_;
  uint64_t generation_ = 0;
  std::shared_ptr<const Router> router_;
  Limits default_limits_;
  bool draining_ = false;
  std::unordered_set<ClientConnection*> connections_;
  std::atomic<size_t> live_{0};
  std::vector<std::unique_ptr<char[]>> free_pieces_;
  boost::asio::steady_timer sweep_timer_;
  bool sweeping_ = false;
  std::unique_ptr<AccessLogWriter> access_log_;
};

}  // namespace sticky::proxy
