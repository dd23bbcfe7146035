#pragma once
// One RESP connection over Asio TCP, or TLS over it: connect (async resolve, async connect and,
// with a TlsContext, the TLS handshake, all bounded by one deadline), pipelined commands with
// replies matched first-in first-out, per-command deadlines and stall detection. The Client builds
// everything else on it: the handshake (AUTH, ROLE), the Sentinel query, the command connection and
// the pub/sub connection.
//
//   auto conn = Connection::create(io, {.command = 100ms, .stall = 2s});
//   conn->connect(address, 500ms, [conn](Result<Ok> r) {
//     conn->send({"PING"}, [](Result<RespValue> reply) { ... });   // "PONG" or an Error
//   });
//
// Pipelining: send() only encodes into an output buffer and, unless a write is already in
// flight or scheduled, schedules a flush on the io_context; everything sent before the flush
// runs goes out in one write. Replies come back in order, so the oldest pending command owns
// the next reply.
//
// Deadlines: every command queued at t has the deadline t + `command`. Commands are queued in
// order with one timeout, so deadlines are in order too: the expired ones are always a prefix of
// the queue. One timer serves them all. An expired command completes at once with "Timeout" and
// stays queued, so its late reply is matched to it and dropped. When the oldest command has
// waited `stall` the server is taken for dead: the connection closes and every command still
// waiting completes with "Disconnected".
//
// Values that arrive with nothing waiting (and RESP3 pushes) go to the push handler: that is
// how the pub/sub connection receives subscribe confirmations and messages (it sends SUBSCRIBE
// with sendUnanswered). Without a push handler such a value means the reply order is lost and
// the connection closes ("Protocol"), as it does on bytes the parser refuses.
//
// TLS: with a TlsContext the socket is wrapped in an ssl::stream after connecting; reads and
// writes go to one or the other by a branch on `tls_` (no virtual call, no extra allocation on
// the plain path). OpenSSL's headers stay out of this header (TlsStream is defined in the .cc).
//
// Threading: every method runs on the io_context's thread. Callbacks may call back into the
// connection (send, close); the connection keeps itself alive across them.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/result.h"
#include "redis/client.h"
#include "redis/resp.h"

namespace sticky::proxy::redis {

class TlsContext;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Clock = std::chrono::steady_clock;
  using Reply = std::function<void(Result<RespValue>)>;
  using PushFn = std::function<void(RespValue)>;
  using ClosedFn = std::function<void(const Error&)>;

  struct Timeouts {
    std::chrono::milliseconds command{100};
    std::chrono::milliseconds stall{2000};
  };

  /// `tls` null: plain TCP. Otherwise every connect() does a TLS handshake (see redis/tls.h).
  static std::shared_ptr<Connection> create(boost::asio::io_context& io, Timeouts timeouts,
                                            std::shared_ptr<const TlsContext> tls = nullptr);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Resolves, connects (and does the TLS handshake) within `timeout`; on success starts
  /// reading. `done` runs once, with an error coded "Unreachable" when it fails.
  void connect(const Address& address, std::chrono::milliseconds timeout,
               std::function<void(Result<Ok>)> done);
  /// The timeouts of commands sent from now on (the handshake uses longer ones).
  void setTimeouts(Timeouts timeouts) { timeouts_ = timeouts; }
  /// Values nobody waits for (see the header comment).
  void onPush(PushFn fn) { push_ = std::move(fn); }
  /// Called once when the connection closes for any reason other than close() itself.
  void onClosed(ClosedFn fn) { closed_ = std::move(fn); }

  /// Queues `command`; `reply` runs exactly once (at once with "Disconnected" when closed).
  void send(const Command& command, Reply reply);
  /// The same for a command already encoded (encodeCommand): exactly one RESP array.
  void sendEncoded(std::string_view command, Reply reply);
  /// Queues `command` expecting no reply of its own (SUBSCRIBE: confirmations are pushes).
  void sendUnanswered(const Command& command);
  /// Closes the socket and completes every waiting command with `reason`. Idempotent; does not
  /// call the closed handler (the caller knows).
  void close(const Error& reason);

  bool isOpen() const { return open_; }
  const Address& address() const { return address_; }
  size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    Reply reply;
    Clock::time_point queued;
    Clock::time_point deadline;
  };

  struct TlsStream;

  Connection(boost::asio::io_context& io, Timeouts timeouts, std::shared_ptr<const TlsContext> tls);
  void resolved(const boost::asio::ip::tcp::resolver::results_type& endpoints);
  void handshake();
  void finishConnect(Result<Ok> result);
  // Queues `reply` for a command just appended to out_.
  void expectReply(Reply reply);
  void scheduleFlush();
  void flush();
  void readMore();
  void consume();
  void deliver(RespValue value);
  void armTimer();
  void timerFired();
  // Closes because of the connection itself (read error, stall, protocol): fails pending with
  // `reason` and tells the closed handler.
  void die(const Error& reason);
  void failPending(const Error& reason);

  boost::asio::io_context& io_;
  Timeouts timeouts_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  std::shared_ptr<const TlsContext> tls_context_;
  std::unique_ptr<TlsStream> tls_;  // over socket_, after connecting with a TlsContext
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer connect_timer_;
  Address address_;
  std::function<void(Result<Ok>)> connect_done_;
  bool connect_timed_out_ = false;
  bool open_ = false;
  bool closed_once_ = false;

  std::string out_;      // encoded, not yet written
  std::string writing_;  // in flight
  bool write_busy_ = false;
  bool flush_scheduled_ = false;

  std::string in_;  // received, not yet parsed (from in_start_)
  size_t in_start_ = 0;
  std::vector<char> chunk_;

  std::deque<Pending> pending_;
  size_t expired_ = 0;  // the first expired_ of pending_ completed with Timeout already
  bool timer_armed_ = false;
  Clock::time_point timer_wake_;
  uint64_t timer_generation_ = 0;

  PushFn push_;
  ClosedFn closed_;
};

}  // namespace sticky::proxy::redis
