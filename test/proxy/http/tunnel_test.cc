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

  void start() {
    asio::co_spawn(
        io,
        [this]() -> asio::awaitable<void> {
          co_await runTunnel({client.near, client_leftover, up_piece.get()},
                             {upstream.near, upstream_leftover, down_piece.get()}, owner);
          done = true;
        },
        asio::detached);
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

}  // namespace
}  // namespace sticky::proxy
