#pragma once
// A worker: one thread, one io_context, one SO_REUSEPORT acceptor, and the connections it
// accepts, which never leave it. Its upstream pool and Router snapshot are its own.
//
// Accepting under overload (docs/security.md):
//   - limits.maxConnections client connections open (all workers together): a connection
//     accepted past it gets a 503 (one non-blocking send) and is closed at once. Refusing costs
//     one accept per connection that arrives, so the loop only does work when a client does, and
//     a client learns at once instead of waiting in the backlog.
//   - accept() failing for lack of file descriptors (EMFILE/ENFILE) or kernel memory: this
//     worker stops accepting for 10 ms, doubling up to 1 s while it keeps failing (waiting
//     connections stay in the kernel's backlog); connections already open are not touched.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/result.h"
#include "http/connection.h"
#include "http/server_stats.h"
#include "routing/router.h"

namespace sticky::proxy {

class Worker {
 public:
  Worker(size_t index, RouterHolder& routers, ServerStats& stats);
  ~Worker();  // stops (closing everything) and joins
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Opens, binds (SO_REUSEPORT) and listens on `endpoint`. Before start().
  Result<Ok> listen(const boost::asio::ip::tcp::endpoint& endpoint);
  boost::asio::ip::tcp::endpoint localEndpoint() const;
  /// Starts the thread: accepting, serving, pool maintenance.
  void start();
  /// The io_context the worker's thread runs (to give it work of its own before start()).
  boost::asio::io_context& io() { return io_; }

  /// Drain: stop accepting; idle connections close, the others after their request in flight.
  void stopAccepting();
  /// Closes every connection now; the thread ends once their coroutines have unwound.
  void stop();
  void join();
  /// Access log lines go to `sink` (before start()).
  void enableAccessLog(AccessLogSink& sink) { ctx_.enableAccessLog(sink); }
  /// Hands this worker's buffered access log lines to the sink; after join().
  void flushAccessLog() {
    if (auto* log = ctx_.accessLog()) log->flush(/*force=*/true);
  }
  /// Client connections open on this worker; any thread.
  size_t connections() const { return ctx_.connections(); }

 private:
  void accept();
  /// Accepts again after a pause that doubles (kAcceptPauseMin .. kAcceptPauseMax) while
  /// accept keeps failing with `ec`.
  void pauseAccepting(const boost::system::error_code& ec);
  /// Over maxConnections: the 503 (rendered once per limit value), then close.
  void refuse(boost::asio::ip::tcp::socket& socket, uint32_t max_connections);
  void scheduleMaintenance();

  size_t index_;
  // One thread runs it and its sockets are touched only from there (other threads post), so the
  // reactor needs no per-socket locks.
  boost::asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  ForwardingContext ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer maintenance_;
  boost::asio::steady_timer accept_pause_;
  std::chrono::milliseconds accept_backoff_{0};  // 0: accepting normally
  uint64_t failed_accepts_ = 0;                  // in the current episode, for the log
  std::string limit_reply_;                      // the 503 of refuse(), for limit_reply_for_
  uint32_t limit_reply_for_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  ServerStats& stats_;
};

}  // namespace sticky::proxy
