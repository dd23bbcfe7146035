#pragma once
// A Redis client over Asio for the shared stick table: one pipelined command connection and one
// pub/sub connection to the primary, found directly or through Sentinel, reconnecting forever
// with backoff. Everything runs on the io_context the client is given (the proxy gives it a
// thread of its own); execute() and publish-side calls may be made from any thread.
//
//   Client client(redis_io, options, stats);
//   client.onConnected([](uint64_t epoch) { /* re-assert local entries */ });
//   client.start();
//   client.execute({"SET", "k", "v", "NX", "PX", "60000", "GET"}, [](CommandResult r) {
//     // runs on redis_io's thread; r is a reply (a Redis error reply is a value) or an Error
//   });
//
// Failure model (the table must never fail a request because of Redis):
//   - not connected: execute() completes at once with code "Disconnected" (the breaker: nothing
//     queues while Redis is away);
//   - a command unanswered after `command_timeout`: completes with "Timeout"; the late reply,
//     if it comes, is matched and dropped. A command unanswered after `stall_timeout` marks the
//     connection dead: it is closed and every pending command completes with "Disconnected";
//   - the connection drops: pending commands complete with "Disconnected"; reconnection starts
//     at `reconnect_min` and doubles up to `reconnect_max`.
// With `tls` every connection (to a sentinel or to the primary) is TLS: a failed handshake
// (an unknown CA, a name mismatch) is refused like an unreachable server and retried.
// Every (re)connection authenticates (AUTH, when a password is set), checks `ROLE` is master
// (through Sentinel the primary is re-resolved on every reconnect), then calls onConnected with
// a new epoch. A READONLY error reply (the primary was demoted) closes the connection so the
// next one finds the new primary.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/result.h"
#include "redis/resp.h"

namespace sticky::proxy::redis {

/// host:port (IPv6 as [addr]:port). Port 6379 when absent (26379 for sentinels is the
/// caller's business: pass it).
struct Address {
  std::string host;
  uint16_t port = 6379;

  static Result<Address> parse(std::string_view text, uint16_t default_port = 6379);
  std::string toString() const;
};

class TlsContext;

struct ClientOptions {
  /// Direct mode: the one primary. Empty when sentinels are used.
  std::vector<Address> addresses = {};
  /// Sentinel mode: the primary named `master_name`, asked of these sentinels in turn.
  std::vector<Address> sentinels = {};
  std::string master_name = {};
  /// AUTH: username may be empty (the default user); no AUTH when password is empty. The same
  /// credentials are used for the sentinels when `sentinel_password` is empty.
  std::string username = {};
  std::string password = {};
  std::string sentinel_username = {};
  std::string sentinel_password = {};
  /// TLS (redis/tls.h) to the sentinels and to the primary; null: plain TCP.
  std::shared_ptr<const TlsContext> tls = {};
  std::chrono::milliseconds connect_timeout{500};
  std::chrono::milliseconds command_timeout{100};
  std::chrono::milliseconds stall_timeout{2000};
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{5000};
  /// Subscribe on a second connection to these channels (may be empty: no pub/sub connection).
  std::vector<std::string> channels = {};
  /// CLIENT SETNAME on every connection to the primary (the pub/sub one gets ":events"
  /// appended), so `CLIENT LIST` tells whose connection is whose; empty: none. No spaces.
  /// Its reply is ignored: a user not allowed CLIENT still connects. Also names the client in
  /// its log lines.
  std::string client_name = {};

  /// One sentence per problem (no address, both modes, sentinel without a master name, ...).
  Result<Ok> validate() const;
};

/// Counters read by the metrics endpoint (any thread). Several clients may share one.
struct RedisStats {
  std::atomic<uint64_t> commands{0};  // sent
  std::atomic<uint64_t> errors{0};    // completed with an Error (any code)
  std::atomic<uint64_t> timeouts{0};  // completed with Timeout
  std::atomic<uint64_t> rejected{0};  // completed at once: not connected
  std::atomic<uint64_t> connects{0};  // successful (re)connections
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> messages{0};       // pub/sub messages received
  std::atomic<uint64_t> latency_count{0};  // replies received in time
  std::atomic<uint64_t> latency_sum_us{0};
};

/// A reply (a Redis error reply is a value of type Error, not a failure) or a failure with one
/// of the codes "Disconnected", "Timeout", "Protocol".
using CommandResult = Result<RespValue>;
using Command = std::vector<std::string>;

class Client {
 public:
  using Done = std::function<void(CommandResult)>;
  using BatchDone = std::function<void(std::vector<CommandResult>)>;
  using MessageFn = std::function<void(std::string_view channel, std::string_view payload)>;

  Client(boost::asio::io_context& io, ClientOptions options, std::shared_ptr<RedisStats> stats);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Callbacks: set before start(). All run on the client's io_context thread.
  void onConnected(std::function<void(uint64_t epoch)> fn);
  void onDisconnected(std::function<void()> fn);
  void onMessage(MessageFn fn);
  /// After (re)subscribing to every channel on a fresh pub/sub connection.
  void onSubscribed(std::function<void()> fn);

  /// Begins connecting (command and, with channels, pub/sub connection). Thread-safe.
  void start();
  /// Closes both connections and stops reconnecting; pending commands complete with
  /// "Disconnected". Thread-safe; returns after the io_context has run the close (or at once
  /// when called on its thread). The io_context must still be running or be run afterwards.
  void stop();

  bool connected() const;
  /// Incremented on every successful (re)connection of the command connection.
  uint64_t epoch() const;
  /// host:port of the primary of the current (or last) connection; empty before the first.
  std::string primary() const;

  /// Sends one command. Thread-safe; `done` runs on the client's io_context thread, exactly once.
  void execute(Command command, Done done);
  /// execute() without the post, for a caller already on the client's io_context thread (only
  /// there): the command, already encoded (encodeCommand: one RESP array), is queued at once,
  /// and `done` runs within this call when the client is not connected.
  void executeHere(std::string_view encoded, Done done);
  /// Sends commands back to back (one write); `done` gets one result per command, in order.
  void executeBatch(std::vector<Command> commands, BatchDone done);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sticky::proxy::redis
