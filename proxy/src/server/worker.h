#pragma once
// A worker: one thread, one io_context, one SO_REUSEPORT acceptor, and the connections it
// accepts, which never leave it. Its upstream pool and Router snapshot are its own.

#include <atomic>
#include <cstddef>
#include <memory>
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

  /// Drain: stop accepting; idle connections close, the others after their request in flight.
  void stopAccepting();
  /// Closes every connection now; the thread ends once their coroutines have unwound.
  void stop();
  void join();
  /// Client connections open on this worker; any thread.
  size_t connections() const { return ctx_.connections(); }

 private:
  void accept();
  void scheduleMaintenance();

  size_t index_;
  // One thread runs it and its sockets are touched only from there (other threads post), so the
  // reactor needs no per-socket locks.
  boost::asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  ForwardingContext ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer maintenance_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  ServerStats& stats_;
};

}  // namespace sticky::proxy
