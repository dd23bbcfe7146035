#include "http/tunnel.h"

#include <exception>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

// See connection.cc: GCC 12 at -O1 reports a false -Wmismatched-new-delete for Asio's coroutine
// frames.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace sticky::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
template <class T>
using awaitable = asio::awaitable<T>;

namespace {

/// Copies bytes from `from` to `to` (first whatever `from.leftover` holds) until EOF, which is
/// passed on as a half-close; any error closes both sockets, which ends the other direction too.
awaitable<void> pump(TunnelEnd from, TunnelEnd to, TunnelIdle* idle) {
  error_code ec;
  auto close_both = [&] {
    error_code ignored;
    from.socket.close(ignored);
    to.socket.close(ignored);
  };
  if (from.leftover.size() != 0) {
    co_await asio::async_write(to.socket, from.leftover.data(), onError(ec));
    from.leftover.consume(from.leftover.size());
    if (ec) co_return close_both();
  }
  while (true) {
    size_t n = co_await from.socket.async_read_some(asio::buffer(from.piece, kRelayPieceSize),
                                                    onError(ec));
    if (idle && !ec) idle->deadline.arm(idle->timeout);
    if (ec == asio::error::eof) {
      error_code ignored;
      to.socket.shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    if (ec) co_return close_both();
    co_await asio::async_write(to.socket, asio::buffer(from.piece, n), onError(ec));
    if (ec) co_return close_both();
  }
}

awaitable<void> runPump(std::shared_ptr<void> keep, TunnelEnd from, TunnelEnd to,
                        TunnelIdle* idle) {
  co_await pump(from, to, idle);
}

}  // namespace

awaitable<void> runTunnel(TunnelEnd client, TunnelEnd upstream, std::shared_ptr<void> keep,
                          TunnelIdle* idle) {
  auto executor = client.socket.get_executor();
  bool down_done = false;
  asio::steady_timer wake(executor);
  wake.expires_at(asio::steady_timer::time_point::max());
  // upstream -> client runs as its own coroutine; client -> upstream runs here. This frame
  // outlives the other one: it waits for it below.
  asio::co_spawn(executor, runPump(std::move(keep), upstream, client, idle),
                 [&down_done, &wake](std::exception_ptr) {
                   down_done = true;
                   wake.cancel();
                 });
  co_await pump(client, upstream, idle);
  if (!down_done) {
    error_code ec;
    co_await wake.async_wait(onError(ec));
  }
}

awaitable<void> tunnel(Downstream& ds, UpstreamConnection& up, std::shared_ptr<void> keep) {
  ds.ctx.stats().tunnels_active.fetch_add(1, std::memory_order_relaxed);
  TunnelIdle idle{ds.deadline, ds.limits.tunnel_idle_timeout};
  ds.deadline.arm(idle.timeout);
  auto down_piece = ds.ctx.takePiece();
  co_await runTunnel({ds.client, ds.buffer, ds.piece()}, {up.socket, up.buffer, down_piece.get()},
                     std::move(keep), &idle);
  ds.deadline.disarm();
  if (ds.deadline.expired())
    ds.ctx.stats().tunnel_idle_timeouts.fetch_add(1, std::memory_order_relaxed);
  ds.ctx.returnPiece(std::move(down_piece));
  ds.ctx.stats().tunnels_active.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace sticky::proxy
