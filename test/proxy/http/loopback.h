#pragma once
// Test helpers for the forwarding path's pieces: connected loopback TCP pairs (real sockets,
// port 0) on one io_context, and running that io_context until a condition holds (poll with a
// deadline, never sleep).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace sticky::proxy::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// Two connected sockets: `near` is the proxy's end, `far` the peer's.
struct SocketPair {
  tcp::socket near;
  tcp::socket far;
};

inline SocketPair socketPair(asio::io_context& io) {
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  SocketPair pair{tcp::socket(io), tcp::socket(io)};
  pair.far.connect(acceptor.local_endpoint());
  acceptor.accept(pair.near);
  return pair;
}

/// Runs `io` until `done()` or `limit` passed; true if done() held.
inline bool runUntil(asio::io_context& io, const std::function<bool()>& done,
                     std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return true;
}

/// Writes `text` to `socket` asynchronously (the io_context must run for it to go out), then
/// calls `then`.
inline void writeLater(tcp::socket& socket, std::string text, std::function<void()> then = {}) {
  auto data = std::make_shared<std::string>(std::move(text));
  asio::async_write(socket, asio::buffer(*data),
                    [data, then = std::move(then)](boost::system::error_code, size_t) {
                      if (then) then();
                    });
}

/// Collects what `socket` receives until end of input (or an error): `eof` says it ended.
struct Collector {
  explicit Collector(tcp::socket& s) : socket(s) { readMore(); }
  void readMore() {
    socket.async_read_some(asio::buffer(chunk), [this](boost::system::error_code ec, size_t n) {
      received.append(chunk, n);
      if (ec) {
        eof = true;
        return;
      }
      readMore();
    });
  }
  tcp::socket& socket;
  char chunk[4096];
  std::string received;
  bool eof = false;
};

}  // namespace sticky::proxy::testing
