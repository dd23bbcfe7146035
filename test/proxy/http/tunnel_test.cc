#include "http/tunnel.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "proxy/http/loopback.h"

// See proxy/src/http/client_connection.cc.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace sticky::proxy {
namespace {

using namespace testing;
using error_code = boost::system::error_code;

/// A client (client.far) and an upstream (upstream.far) with a tunnel between them.
struct Tunnel {
  asio::io_context io;
  SocketPair client = socketPair(io);
  SocketPair upstream = socketPair(io);
  boost::beast::flat_buffer client_leftover;
  boost::beast::flat_buffer upstream_leftover;
  std::unique_ptr<char[]> up_piece = std::make_unique<char[]>(kRelayPieceSize);
  std::unique_ptr<char[]> down_piece = std::make_unique<char[]>(kRelayPieceSize);
  std::shared_ptr<int> owner = std::make_shared<int>(0);
  bool done = false;
  Deadline deadline;
  TunnelIdle idle{deadline, std::chrono::milliseconds(200)};

  void start(bool with_idle = false) {
    asio::co_spawn(
        io,
        [this, with_idle]() -> asio::awaitable<void> {
          co_await runTunnel({client.near, client_leftover, up_piece.get()},
                             {upstream.near, upstream_leftover, down_piece.get()}, owner,
                             with_idle ? &idle : nullptr);
          done = true;
        },
        asio::detached);
  }

  /// What the worker's sweep does for a connection: cancel both sockets once the deadline passed.
  void sweep() {
    if (!deadline.passed(SteadyClock::now())) return;
    boost::system::error_code ignored;
    client.near.cancel(ignored);
    upstream.near.cancel(ignored);
  }
};

void put(boost::beast::flat_buffer& b, const std::string& s) {
  b.commit(asio::buffer_copy(b.prepare(s.size()), asio::buffer(s)));
}

TEST_CASE("a tunnel carries bytes both ways, leftovers first, until both sides close") {
  Tunnel t;
  put(t.client_leftover, "early-client ");
  put(t.upstream_leftover, "early-upstream ");
  t.start();
  Collector at_upstream(t.upstream.far);
  Collector at_client(t.client.far);

  writeLater(t.client.far, "ping");
  REQUIRE(runUntil(t.io, [&] { return at_upstream.received == "early-client ping"; }));
  writeLater(t.upstream.far, "pong");
  REQUIRE(runUntil(t.io, [&] { return at_client.received == "early-upstream pong"; }));

  // Bigger than a piece, both ways at once.
  std::string big_up(3 * kRelayPieceSize + 5, 'u');
  std::string big_down(2 * kRelayPieceSize + 9, 'd');
  writeLater(t.client.far, big_up);
  writeLater(t.upstream.far, big_down);
  REQUIRE(runUntil(t.io, [&] {
    return at_upstream.received.size() == 17 + big_up.size() &&
           at_client.received.size() == 19 + big_down.size();
  }));
  CHECK(at_upstream.received == "early-client ping" + big_up);
  CHECK(at_client.received == "early-upstream pong" + big_down);
  CHECK(t.owner.use_count() == 2);  // the second direction keeps the owner alive

  // The client closes its side: the upstream sees the end, the other direction still works.
  t.client.far.shutdown(tcp::socket::shutdown_send);
  REQUIRE(runUntil(t.io, [&] { return at_upstream.eof; }));
  CHECK_FALSE(t.done);
  writeLater(t.upstream.far, "bye");
  REQUIRE(runUntil(t.io, [&] { return at_client.received.ends_with("bye"); }));
  CHECK_FALSE(t.done);

  // Then the upstream closes: the client sees the end and the tunnel is over.
  t.upstream.far.shutdown(tcp::socket::shutdown_send);
  REQUIRE(runUntil(t.io, [&] { return at_client.eof && t.done; }));
  REQUIRE(runUntil(t.io, [&] { return t.owner.use_count() == 1; }));
}

TEST_CASE("a side that resets ends the tunnel both ways") {
  Tunnel t;
  t.start();
  Collector at_client(t.client.far);
  writeLater(t.client.far, "x");
  // The upstream goes away without reading: closing both sockets ends both directions.
  t.upstream.far.set_option(asio::socket_base::linger(true, 0));
  t.upstream.far.close();
  REQUIRE(runUntil(t.io, [&] { return t.done && at_client.eof; }));
}

TEST_CASE("each byte re-arms the tunnel's idle deadline - once it passes, both sides close") {
  Tunnel t;
  t.deadline.arm(t.idle.timeout);
  t.start(/*with_idle=*/true);
  Collector at_upstream(t.upstream.far);
  Collector at_client(t.client.far);
  // Traffic every 50 ms for 600 ms, three times the idle limit: the tunnel stays.
  for (int i = 0; i < 12; ++i) {
    writeLater(i % 2 ? t.client.far : t.upstream.far, "x");
    auto until = SteadyClock::now() + std::chrono::milliseconds(50);
    runUntil(t.io, [&] {
      t.sweep();
      return SteadyClock::now() >= until;
    });
  }
  CHECK_FALSE(t.done);
  CHECK(at_upstream.received == "xxxxxx");
  CHECK(at_client.received == "xxxxxx");
  // Then nothing: the sweep cancels both sockets and the tunnel closes both ends.
  REQUIRE(runUntil(t.io, [&] {
    t.sweep();
    return t.done && at_client.eof && at_upstream.eof;
  }));
  CHECK(t.deadline.expired());
}

}  // namespace
}  // namespace sticky::proxy
