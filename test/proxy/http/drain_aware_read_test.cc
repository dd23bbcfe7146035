#include "http/drain_aware_read.h"

#include <doctest/doctest.h>

#include <array>
#include <optional>
#include <string>

#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "proxy/http/loopback.h"

namespace sticky::proxy {
namespace {

using namespace testing;
using error_code = boost::system::error_code;

/// One drainAwareReadSome at a time on the near end of a loopback pair (with the drain hint
/// unless told otherwise), and what it completed with.
struct Reads {
  explicit Reads(bool hint = true) {
    if (hint) enableDrainHint(pair.near);
  }
  asio::io_context io;
  SocketPair pair = socketPair(io);
  std::array<char, 64> storage{};
  std::optional<error_code> ec;  // set once the read completed
  std::string got;

  void start(size_t size = 64) {
    ec.reset();
    got.clear();
    drainAwareReadSome(pair.near, asio::buffer(storage.data(), size),
                       [this](error_code e, size_t n) {
                         got.assign(storage.data(), n);
                         ec = e;
                       });
  }
  /// Starts a read and runs until it completes (false: not within 2 s).
  bool read(size_t size = 64) {
    start(size);
    return finish();
  }
  bool finish() {
    return runUntil(
        io, [&] { return ec.has_value(); }, std::chrono::seconds(2));
  }
  void peerSends(const std::string& text) { asio::write(pair.far, asio::buffer(text)); }
  /// Runs the io_context's reactor a few times (a pending timer keeps it running even when no
  /// read waits): the readiness events of what arrived are taken from epoll.
  void takeEvents() {
    asio::steady_timer keep(io, std::chrono::hours(1));
    keep.async_wait([](error_code) {});
    for (int i = 0; i < 5; ++i) {
      if (io.stopped()) io.restart();
      io.poll();
    }
    keep.cancel();
    if (io.stopped()) io.restart();
    io.poll();
  }
};

TEST_CASE("drain-aware read: a read that drained the socket - the next waits for new data") {
  Reads r;
  r.peerSends("abc");
  REQUIRE(r.read());
  CHECK_FALSE(*r.ec);
  CHECK(r.got == "abc");

  r.start();
  r.takeEvents();
  CHECK_FALSE(r.ec.has_value());  // nothing came: still waiting
  r.peerSends("def");
  REQUIRE(r.finish());
  CHECK_FALSE(*r.ec);
  CHECK(r.got == "def");
}

TEST_CASE("drain-aware read: data that came between two reads is found by the second") {
  Reads r;
  r.peerSends("abc");
  REQUIRE(r.read());
  CHECK(r.got == "abc");
  // The new data's readiness event is taken while no read waits: the next read must still see it.
  r.peerSends("xyz");
  r.takeEvents();
  REQUIRE(r.read());
  CHECK_FALSE(*r.ec);
  CHECK(r.got == "xyz");
}

TEST_CASE("drain-aware read: data and the end of stream together - the data, then eof at once") {
  for (bool hint : {true, false}) {
    CAPTURE(hint);
    Reads r(hint);
    r.peerSends("abc");
    r.pair.far.shutdown(tcp::socket::shutdown_send);
    REQUIRE(runUntil(r.io, [&] { return r.pair.near.available() == 3; }));
    r.takeEvents();  // the FIN's event is taken before the data is read
    REQUIRE(r.read());
    CHECK_FALSE(*r.ec);
    CHECK(r.got == "abc");
    REQUIRE(r.read());  // a lost FIN would leave this read waiting
    CHECK(*r.ec == asio::error::eof);
    CHECK(r.got.empty());
  }
}

TEST_CASE("drain-aware read: the end of stream after a drained read ends the waiting read") {
  Reads r;
  r.peerSends("abc");
  REQUIRE(r.read());
  r.start();
  r.takeEvents();
  CHECK_FALSE(r.ec.has_value());
  r.pair.far.close();
  REQUIRE(r.finish());
  CHECK(*r.ec == asio::error::eof);
}

TEST_CASE("drain-aware read: a read that fills its buffer leaves the rest for the next") {
  Reads r;
  r.peerSends("0123456789");
  REQUIRE(runUntil(r.io, [&] { return r.pair.near.available() == 10; }));
  std::string all;
  while (all.size() < 10) {
    REQUIRE(r.read(4));
    REQUIRE_FALSE(*r.ec);
    CHECK(r.got.size() == std::min<size_t>(4, 10 - all.size()));
    all += r.got;
  }
  CHECK(all == "0123456789");
  // Drained now: the next read waits for more.
  r.start(4);
  r.takeEvents();
  CHECK_FALSE(r.ec.has_value());
  r.peerSends("z");
  REQUIRE(r.finish());
  CHECK(r.got == "z");
}

TEST_CASE("drain-aware read: cancel and close end a waiting read with operation_aborted") {
  Reads r;
  r.start();
  r.takeEvents();
  CHECK_FALSE(r.ec.has_value());
  r.pair.near.cancel();
  REQUIRE(r.finish());
  CHECK(*r.ec == asio::error::operation_aborted);

  r.peerSends("abc");
  REQUIRE(r.read());  // the socket still works after a cancel
  CHECK(r.got == "abc");
  r.start();
  r.pair.near.close();
  REQUIRE(r.finish());
  CHECK(*r.ec == asio::error::operation_aborted);
}

TEST_CASE("drain-aware read: an empty buffer completes at once, a reset is an error") {
  Reads r;
  REQUIRE(r.read(0));
  CHECK_FALSE(*r.ec);
  CHECK(r.got.empty());

  // The peer resets the connection (SO_LINGER 0) while a read waits.
  r.start();
  r.takeEvents();
  r.pair.far.set_option(asio::socket_base::linger(true, 0));
  r.pair.far.close();
  REQUIRE(r.finish());
  CHECK(*r.ec == asio::error::connection_reset);
}

}  // namespace
}  // namespace sticky::proxy
