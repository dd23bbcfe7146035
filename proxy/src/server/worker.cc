#include "server/worker.h"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>

#include <boost/asio/post.hpp>
#include <boost/beast/http/write.hpp>

#include "common/log.h"
#include "http/drain_aware_read.h"
#include "http/local_reply.h"
#include "http/socket_io.h"

namespace sticky::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {
constexpr auto kMaintenancePeriod = std::chrono::seconds(1);
constexpr auto kAcceptPauseMin = std::chrono::milliseconds(10);
constexpr auto kAcceptPauseMax = std::chrono::milliseconds(1000);

/// Accept errors that concern one connection only (it was reset while queued, a signal): accept
/// the next one at once.
bool transientAcceptError(const error_code& ec) {
  return ec == asio::error::connection_aborted || ec == asio::error::would_block ||
         ec == asio::error::try_again || ec == asio::error::interrupted ||
         ec == asio::error::connection_reset;
}
}  // namespace

Worker::Worker(size_t index, RouterHolder& routers, ServerStats& stats)
    : index_(index),
      ctx_(io_, routers, stats),
      acceptor_(io_),
      maintenance_(io_),
      accept_pause_(io_),
      stats_(stats) {}

Worker::~Worker() {
  stop();
  join();
  ctx_.pool().clear();
}

Result<Ok> Worker::listen(const tcp::endpoint& endpoint) {
  error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) {
    int one = 1;
    if (::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      ec.assign(errno, boost::system::system_category());
  }
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;  // (closing must not overwrite the error being reported)
    acceptor_.close(ignored);
    std::string address = endpoint.address().to_string();
    if (endpoint.address().is_v6()) address = "[" + address + "]";
    return fail("cannot listen on " + address + ":" + std::to_string(endpoint.port()) + ": " +
                ec.message());
  }
  return Ok{};
}

tcp::endpoint Worker::localEndpoint() const {
  error_code ec;
  return acceptor_.local_endpoint(ec);
}

void Worker::start() {
  accept();
  scheduleMaintenance();
  thread_ = std::thread([this] {
    // The io_context runs until nothing is left: acceptor closed, timer cancelled, every
    // connection coroutine finished.
    DrainAwareReadScope reads(io_);
    io_.run();
  });
}

void Worker::accept() {
  acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      if (transientAcceptError(ec))
        accept();
      else
        pauseAccepting(ec);
      return;
    }
    if (accept_backoff_.count() != 0) {
      logInfo("worker " + std::to_string(index_) + ": accepting again after " +
              std::to_string(failed_accepts_) + " failed accepts");
      accept_backoff_ = {};
      failed_accepts_ = 0;
    }
    stats_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
    // All workers' connections: exact but for accepts racing on other workers right now.
    uint32_t max = ctx_.limits().max_connections;
    if (stats_.connections_active.load(std::memory_order_relaxed) >= max)
      refuse(socket, max);
    else
      ctx_.serve(std::move(socket));
    accept();
  });
}

void Worker::pauseAccepting(const error_code& ec) {
  if (isFdExhaustion(ec)) stats_.accept_fd_exhausted.fetch_add(1, std::memory_order_relaxed);
  ++failed_accepts_;
  if (accept_backoff_.count() == 0) {
    accept_backoff_ = kAcceptPauseMin;
    logWarn("worker " + std::to_string(index_) + ": accept failed: " + ec.message() +
            "; pausing accepts (10ms, doubling up to 1s) until one succeeds");
  } else {
    accept_backoff_ = std::min(2 * accept_backoff_, kAcceptPauseMax);
  }
  accept_pause_.expires_after(accept_backoff_);
  accept_pause_.async_wait([this](error_code wait_ec) {
    if (wait_ec || !acceptor_.is_open()) return;
    accept();
  });
}

void Worker::refuse(tcp::socket& socket, uint32_t max_connections) {
  if (limit_reply_for_ != max_connections) {
    auto reply = localReply(LocalReason::ConnectionLimit, std::to_string(max_connections));
    std::ostringstream out;
    out << renderLocalReply(reply, {});
    limit_reply_ = out.str();
    limit_reply_for_ = max_connections;
  }
  countLocalReply(stats_, stats_.unrouted_proxy_responses, LocalReason::ConnectionLimit);
  // One try: a new socket's buffer takes a few hundred bytes; if not, the close says enough.
  (void)::send(socket.native_handle(), limit_reply_.data(), limit_reply_.size(),
               MSG_DONTWAIT | MSG_NOSIGNAL);
  error_code ignored;
  socket.close(ignored);
}

void Worker::scheduleMaintenance() {
  maintenance_.expires_after(kMaintenancePeriod);
  maintenance_.async_wait([this](error_code ec) {
    if (ec || stopping_) return;
    ctx_.pool().prune(SteadyClock::now(), ctx_.limits().keep_alive_idle_timeout);
    scheduleMaintenance();
  });
}

void Worker::stopAccepting() {
  asio::post(io_, [this] {
    error_code ignored;
    acceptor_.close(ignored);
    accept_pause_.cancel();
    ctx_.startDraining();
  });
}

void Worker::stop() {
  if (stopping_.exchange(true)) return;
  asio::post(io_, [this] {
    error_code ignored;
    acceptor_.close(ignored);
    accept_pause_.cancel();
    maintenance_.cancel();
    ctx_.closeAll();
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace sticky::proxy
