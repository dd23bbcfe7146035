#include "server/worker.h"

#include <sys/socket.h>

#include <chrono>
#include <string>

#include <boost/asio/post.hpp>

#include "common/log.h"

namespace sticky::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {
constexpr auto kMaintenancePeriod = std::chrono::seconds(1);
}

Worker::Worker(size_t index, RouterHolder& routers, ServerStats& stats)
    : index_(index), ctx_(io_, routers, stats), acceptor_(io_), maintenance_(io_), stats_(stats) {}

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
    io_.run();
  });
}

void Worker::accept() {
  acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      stats_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
      ctx_.serve(std::move(socket));
    } else if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
      logWarn("worker " + std::to_string(index_) + ": accept failed: " + ec.message());
    }
    accept();
  });
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
    ctx_.startDraining();
  });
}

void Worker::stop() {
  if (stopping_.exchange(true)) return;
  asio::post(io_, [this] {
    error_code ignored;
    acceptor_.close(ignored);
    maintenance_.cancel();
    ctx_.closeAll();
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace sticky::proxy
