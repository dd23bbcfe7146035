#include "http/upstream_pool.h"

#include <doctest/doctest.h>

#include <sys/socket.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

namespace sticky::proxy {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

/// A loopback listener and the server ends of the connections made to it.
struct Peer {
  asio::io_context io;
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  std::vector<std::unique_ptr<tcp::socket>> accepted;

  std::unique_ptr<UpstreamConnection> connect(EndpointId id) {
    auto conn = std::make_unique<UpstreamConnection>(io, id);
    conn->socket.connect(acceptor.local_endpoint());
    accepted.push_back(std::make_unique<tcp::socket>(io));
    acceptor.accept(*accepted.back());
    return conn;
  }
};

/// True once the pool, checking liveness, refuses endpoint `id`'s idle connection; polls up to
/// `limit`, since what the peer did reaches us asynchronously. `now` is the acquire time given
/// (default: the real now, with nothing trusted unchecked).
bool refusedWithin(UpstreamPool& pool, EndpointId id, std::chrono::milliseconds limit,
                   std::optional<TimePoint> now = std::nullopt) {
  auto deadline = SteadyClock::now() + limit;
  while (true) {
    auto got = now ? pool.acquire(id, *now, 1s) : pool.acquire(id, SteadyClock::now(), 0ms);
    if (!got) return true;
    TimePoint idle_since = got->idle_since;
    pool.release(std::move(got), idle_since, 8);
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

TEST_CASE("an idle connection is handed out again, most recent first, per endpoint") {
  Peer peer;
  UpstreamPool pool;
  auto now = SteadyClock::now();
  auto a = peer.connect(1);
  auto b = peer.connect(1);
  auto* a_raw = a.get();
  auto* b_raw = b.get();
  pool.release(std::move(a), now, 8);
  pool.release(std::move(b), now, 8);
  CHECK(pool.idle() == 2);
  CHECK(pool.acquire(2, SteadyClock::now(), 0ms) == nullptr);  // other endpoint
  auto first = pool.acquire(1, SteadyClock::now(), 0ms);
  CHECK(first.get() == b_raw);
  auto second = pool.acquire(1, SteadyClock::now(), 0ms);
  CHECK(second.get() == a_raw);
  CHECK(pool.acquire(1, SteadyClock::now(), 0ms) == nullptr);
}

TEST_CASE("a connection the peer closed is not handed out") {
  Peer peer;
  UpstreamPool pool;
  pool.release(peer.connect(1), SteadyClock::now(), 8);
  peer.accepted.back()->close();
  CHECK(refusedWithin(pool, 1, 1s));
  CHECK(pool.idle() == 0);
}

TEST_CASE("a connection idle for less than the trusted time is handed out without a check") {
  Peer peer;
  UpstreamPool pool;
  auto t0 = SteadyClock::now();
  pool.release(peer.connect(1), t0, 8);
  peer.accepted.back()->close();
  // Handed out unchecked, also once the FIN has arrived (a check would see it then).
  auto got = pool.acquire(1, t0 + 500ms, 1s);
  REQUIRE(got != nullptr);
  char byte;
  auto deadline = SteadyClock::now() + 2s;
  while (::recv(got->socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 0 &&
         SteadyClock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  pool.release(std::move(got), t0, 8);
  CHECK(pool.acquire(1, t0 + 500ms, 1s) != nullptr);
  // Idle for the trusted time: checked, and refused.
  pool.release(peer.connect(1), t0, 8);
  peer.accepted.back()->close();
  CHECK(refusedWithin(pool, 1, 1s, t0 + 1s));
}

TEST_CASE("a connection with unsolicited bytes is not handed out") {
  Peer peer;
  UpstreamPool pool;
  pool.release(peer.connect(1), SteadyClock::now(), 8);
  asio::write(*peer.accepted.back(), asio::buffer(std::string("HTTP/1.1 200 OK\r\n")));
  CHECK(refusedWithin(pool, 1, 1s));
  CHECK(pool.idle() == 0);
}

TEST_CASE("max idle per endpoint is enforced and 0 disables pooling") {
  Peer peer;
  UpstreamPool pool;
  auto now = SteadyClock::now();
  for (int i = 0; i < 5; ++i) pool.release(peer.connect(7), now, 3);
  CHECK(pool.idle() == 3);
  pool.release(peer.connect(8), now, 0);
  CHECK(pool.acquire(8, SteadyClock::now(), 0ms) == nullptr);
}

TEST_CASE("prune closes connections idle longer than the limit") {
  Peer peer;
  UpstreamPool pool;
  auto t0 = SteadyClock::now();
  pool.release(peer.connect(1), t0, 8);
  pool.release(peer.connect(2), t0 + 10s, 8);
  CHECK(pool.prune(t0 + 15s, 10s) == 1);
  CHECK(pool.acquire(1, SteadyClock::now(), 0ms) == nullptr);
  CHECK(pool.acquire(2, SteadyClock::now(), 0ms) != nullptr);
  pool.release(peer.connect(3), t0, 8);
  pool.clear();
  CHECK(pool.idle() == 0);
}

}  // namespace
}  // namespace sticky::proxy
