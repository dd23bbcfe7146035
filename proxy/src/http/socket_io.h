#pragma once
// Socket helpers the pieces of the forwarding path share: the per-connection deadline (checked
// by the worker's sweep, so no timer per operation), writes that go out at once when the socket
// takes them, and chunk framing.
//
//   Deadline d;  d.arm(5s);  co_await socket.async_read_some(...);  d.disarm();
//   // the sweep calls d.passed(now) and, when true, cancels the socket: the read ends with
//   // operation_aborted and d.expired() says it was the deadline.

#include <array>
#include <cerrno>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/proxy_config.h"
#include "http/byte_buffer.h"
#include "routing/stick_table.h"  // SteadyClock, TimePoint

namespace sticky::proxy {

/// True for the errors that say the process (EMFILE) or the system (ENFILE) has no file
/// descriptor left: the proxy's own shortage, never the peer's fault.
inline bool isFdExhaustion(const boost::system::error_code& ec) {
  return ec.category() == boost::system::system_category() &&
         (ec.value() == EMFILE || ec.value() == ENFILE);
}

/// Bytes one read asks the kernel for (into a connection's read buffer).
inline constexpr size_t kReadSize = 16 * 1024;

/// Completion token: resume the coroutine with the error in `ec` instead of throwing.
inline auto onError(boost::system::error_code& ec) {
  return boost::asio::redirect_error(boost::asio::use_awaitable, ec);
}

/// When the pending operation of a connection must be finished by. Armed before an operation,
/// disarmed after it; the worker's sweep cancels the sockets once passed() and the operation then
/// reports operation_aborted, with expired() true.
class Deadline {
 public:
  void arm(Duration d) {
    at_ = SteadyClock::now() + d;
    expired_ = false;
  }
  void disarm() { at_ = TimePoint::max(); }
  /// For the sweep: true (once) when the deadline has passed; expired() is then true.
  bool passed(TimePoint now) {
    if (now < at_) return false;
    at_ = TimePoint::max();
    expired_ = true;
    return true;
  }
  bool expired() const { return expired_; }
  void clearExpired() { expired_ = false; }

 private:
  TimePoint at_ = TimePoint::max();
  bool expired_ = false;
};

/// What one write of the forwarding path sends: a head (and chunk framing), a body piece, and a
/// suffix (chunk end).
using OutBuffers = std::array<boost::asio::const_buffer, 3>;

inline OutBuffers outBuffers(const ByteBuffer& head, const char* piece, size_t n,
                             std::string_view suffix = {}) {
  return {boost::asio::buffer(head.data(), head.size()), boost::asio::buffer(piece, n),
          boost::asio::buffer(suffix.data(), suffix.size())};
}

/// Sends as much of `bufs` as `socket` (non-blocking) takes now and advances `bufs` past it.
/// True when all went out: the usual case, which needs no asynchronous operation and no trip
/// through the scheduler. Else false, with `ec` would_block (sendRest the rest) or the error.
bool sendNow(boost::asio::ip::tcp::socket& socket, OutBuffers& bufs, boost::system::error_code& ec);

/// What sendNow() left of `out` (it returned would_block), written asynchronously; `limit` is an
/// idle limit, re-armed whenever the peer takes bytes (a slow reader that keeps reading gets it
/// all, one that stops is cut after `limit`). `ec` says how it went.
boost::asio::awaitable<void> sendRest(boost::asio::ip::tcp::socket& socket, OutBuffers& out,
                                      Deadline& deadline, Duration limit,
                                      boost::system::error_code& ec);

/// Appends the chunk framing of an `n`-byte piece (`last`: the body ends with it) to `prefix`;
/// returns what goes after the piece. 5 bytes -> prefix "5\r\n", suffix "\r\n" (or
/// "\r\n0\r\n\r\n" when last); 0 bytes and last -> suffix "0\r\n\r\n".
std::string_view frameChunk(ByteBuffer& prefix, size_t n, bool last);

/// A duration as the local replies say it: 10000ms -> "10s", 1500ms -> "1500ms".
std::string seconds(Duration d);

}  // namespace sticky::proxy
