#pragma once
// A real HTTP/1.1 + WebSocket backend for tests (Beast), in-process on its own thread. The
// sticky-test-backend executable runs the same server as a separate process.
//
//   any path          200 {"backend":NAME,"method":..,"path":..,"query":..,"headers":{..},
//                          "bodyBytes":N,"bodyHash":"fnv1a64 hex","body":".."(if <= 4 KiB)}
//   /download?bytes=N N bytes of the pattern downloadByte(i), written in 64 KiB pieces
//                     (&chunked=1: chunked transfer encoding instead of Content-Length)
//   /upload           consumes the body; the JSON above reports bodyBytes and bodyHash
//   /status/NNN       answers status NNN (JSON body unless the status forbids one)
//   /ws               WebSocket echo (text and binary); the 101 carries x-backend too
//   /slow?ms=N        answers after N milliseconds
//   /close            closes the connection without a response
//   any path, ?set-header=Name:Value (repeatable): adds that header to the response.
// Every response carries `x-backend: NAME`.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace sticky::test {

/// Byte `i` of every /download body: lets a client check what it received.
inline char downloadByte(uint64_t i) {
  return static_cast<char>('a' + i % 26);
}

/// FNV-1a 64-bit, the backend's bodyHash (hex); incremental via `seed`.
uint64_t fnv1a64(std::string_view data, uint64_t seed = 14695981039346656037ull);
std::string hex64(uint64_t v);

class Backend {
 public:
  /// Binds `address`:`port` (port 0 picks one) and serves on a background thread. Throws
  /// std::runtime_error if it cannot bind.
  Backend(std::string address, uint16_t port, std::string name);
  ~Backend();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  const std::string& name() const;
  const std::string& address() const;
  uint16_t port() const;
  /// Requests answered (or connections upgraded) so far.
  uint64_t requests() const;
  /// TCP connections accepted so far.
  uint64_t connections() const;
  /// Stops accepting and closes every connection; idempotent.
  void stop();

  struct Impl;

 private:
  void accept();

  std::shared_ptr<Impl> impl_;
  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::thread thread_;
  std::once_flag stopped_;
};

}  // namespace sticky::test
