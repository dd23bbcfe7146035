#pragma once
// The access log: one line per request, off unless --access-log names a destination.
//
//   {"time":"2026-12-05T10:00:00.123Z","namespace":"shop","stickyroute":"web","pod":"web-1",
//    "status":200,"source":"upstream","duration_ms":1.234,"bytes_received":112,
//    "bytes_sent":342,"moved_from":"","method":"GET","path":"/cart","key_hash":"5f0c..."}
//   2026-12-05T10:00:00.123Z info access namespace=shop stickyroute=web pod=web-1 status=200 ...
//
// (one line each; JSON by default, or text shaped like --log-format text's lines.)
//
// Cost: when off, ForwardingContext::accessLog() is null and each hook on the request path is
// one predictable branch on it (Downstream::access_log). When on, a request's line is formatted
// into its worker's buffer (AccessLogWriter: no lock, no allocation once the buffer has grown),
// and the buffer is handed to a writer thread (AccessLogSink) when it passes kFlushBytes, every
// kFlushInterval, and when the worker stops. The event loop never waits for the disk: the sink
// queues at most kMaxQueuedBytes, a worker buffers at most kMaxBufferedBytes, and a line that
// finds both full is dropped and counted (ServerStats::access_log_dropped,
// sticky_access_log_dropped_total).
//
//   worker 1: AccessLogWriter ─┐ batches (swap of a std::string)
//   worker n: AccessLogWriter ─┴──────────────▶ AccessLogSink queue ──▶ writer thread ──▶ fd

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/log.h"
#include "common/result.h"
#include "routing/stick_table.h"  // SteadyClock, TimePoint

namespace sticky::proxy {

/// How the session key appears in a line.
enum class AccessLogKey {
  None,   // not at all
  Hash,   // "key_hash": 16 hex digits of the stick table's own 64-bit key hash (hashKey)
  Plain,  // "key": the header value as sent
};

/// How the request target appears in a line ("method" is always there).
enum class AccessLogPath {
  None,  // no "path"
  Path,  // the path without the query string (queries often carry tokens)
  Full,  // the request target as sent, query included
};

/// "none", "hash", "plain"; nullopt for anything else.
std::optional<AccessLogKey> parseAccessLogKey(std::string_view text);
/// "none", "path", "full"; nullopt for anything else.
std::optional<AccessLogPath> parseAccessLogPath(std::string_view text);

struct AccessLogOptions {
  std::string destination;  // "stdout", "stderr" or a file path (appended to); empty: off
  LogFormat format = LogFormat::Json;
  AccessLogKey key = AccessLogKey::Hash;
  AccessLogPath path = AccessLogPath::Path;

  bool enabled() const { return !destination.empty(); }
};

/// One request as its line tells it. Views stay valid while the line is formatted.
struct AccessEntry {
  LogClock::time_point time;  // when the request head began to arrive
  std::chrono::microseconds duration{0};
  std::string_view route;       // "namespace/name"; empty when no route matched
  std::string_view pod;         // the endpoint that answered; empty for the proxy's own replies
  std::string_view moved_from;  // the endpoint the session moved off, when it moved
  std::string_view method;
  std::string_view target;              // the request target as sent
  std::optional<std::string_view> key;  // the session header's value, when sent
  unsigned status = 0;                  // 0: no response was sent (the client went away first)
  bool local = false;                   // source: the proxy's own reply (true) or the upstream's
  uint64_t bytes_received = 0;          // request head and body (framing included) from the client
  uint64_t bytes_sent = 0;              // response head and body (framing included) to the client
};

/// Formats lines (pure but for a cache of the current second's text). One per worker.
class AccessLineFormatter {
 public:
  explicit AccessLineFormatter(const AccessLogOptions& options) : options_(options) {}

  /// Appends the line for `entry`, '\n' included, to `out`.
  void append(std::string& out, const AccessEntry& entry);

 private:
  void appendTime(std::string& out, LogClock::time_point t);
  void appendJson(std::string& out, const AccessEntry& e);
  void appendText(std::string& out, const AccessEntry& e);

  AccessLogOptions options_;
  std::time_t cached_second_ = -1;
  char second_text_[20] = {};  // "YYYY-MM-DDTHH:MM:SS" of cached_second_
};

/// Where the lines go: a file descriptor written by a thread of its own. Thread-safe.
class AccessLogSink {
 public:
  /// A batch is handed over when a worker's buffer passes this many bytes...
  static constexpr size_t kFlushBytes = 64 * 1024;
  /// ... or this long after its first line.
  static constexpr auto kFlushInterval = std::chrono::milliseconds(100);
  /// Bytes queued for the writer thread, all workers together, before batches are refused.
  static constexpr size_t kMaxQueuedBytes = 8 * 1024 * 1024;
  /// Bytes a worker keeps while the queue refuses its batch; past this, lines are dropped.
  static constexpr size_t kMaxBufferedBytes = 1024 * 1024;

  /// Opens the destination (a file: created 0644 and appended to) and starts the thread.
  /// `dropped` counts lines lost (a full queue, a failed write); it must outlive the sink.
  static Result<std::unique_ptr<AccessLogSink>> open(const AccessLogOptions& options,
                                                     std::atomic<uint64_t>& dropped);
  ~AccessLogSink();  // stop()
  AccessLogSink(const AccessLogSink&) = delete;
  AccessLogSink& operator=(const AccessLogSink&) = delete;

  const AccessLogOptions& options() const { return options_; }
  std::atomic<uint64_t>& dropped() { return dropped_; }

  /// Queues `batch` (whole lines) for writing and leaves an empty buffer in its place (with
  /// capacity, when one is free). False, `batch` untouched, when kMaxQueuedBytes are queued and
  /// `force` is not set (a worker stopping forces its last batch).
  bool submit(std::string& batch, bool force = false);
  /// Writes what is queued, stops the thread, closes a file. Idempotent.
  void stop();

 private:
  AccessLogSink(AccessLogOptions options, int fd, bool owns_fd, std::atomic<uint64_t>& dropped);
  void run();
  void writeAll(const std::string& batch);

  AccessLogOptions options_;
  int fd_;
  bool owns_fd_;
  std::atomic<uint64_t>& dropped_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;   // guarded by mu_
  std::vector<std::string> spare_;  // guarded by mu_: written batches, cleared, for reuse
  size_t queued_bytes_ = 0;         // guarded by mu_
  bool stopping_ = false;           // guarded by mu_
  std::thread thread_;
};

/// A worker's side of the access log: formats into its buffer and hands batches to the sink.
/// Single-threaded: the worker's. Its destructor hands over what is left.
class AccessLogWriter {
 public:
  AccessLogWriter(boost::asio::io_context& io, AccessLogSink& sink);
  ~AccessLogWriter();
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  void write(const AccessEntry& entry);
  /// Hands the buffer to the sink now (`force`: even past the sink's bound).
  void flush(bool force = false);

 private:
  void armTimer();

  AccessLogSink& sink_;
  AccessLineFormatter formatter_;
  std::string buffer_;
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
  bool refused_ = false;  // the sink refused the last batch: retry on the timer, not per line
};

/// What the request path records of one request for its line (Downstream::access). Written only
/// when the access log is on.
struct AccessRecord {
  TimePoint start;
  const std::string* pod = nullptr;  // the endpoint that answered (the Router snapshot's)
  std::string moved_from;
  unsigned status = 0;
  bool local = false;
  uint64_t bytes_sent = 0;  // counted on every request: an add, no branch

  void begin(TimePoint now) {
    start = now;
    pod = nullptr;
    moved_from.clear();
    status = 0;
    local = false;
    bytes_sent = 0;
  }
  /// The upstream's response head arrived.
  void upstream(const std::string& endpoint, std::string_view moved, unsigned code) {
    pod = &endpoint;
    moved_from.assign(moved);
    status = code;
    local = false;
  }
  /// A reply of the proxy's own replaces whatever came before.
  void proxy(unsigned code, std::string_view moved) {
    pod = nullptr;
    if (!moved.empty()) moved_from.assign(moved);
    status = code;
    local = true;
  }
};

}  // namespace sticky::proxy
