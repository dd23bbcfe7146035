#include "http/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include "common/log_escape.h"
#include "routing/placement.h"  // hashKey: the stick table's own key hash

namespace sticky::proxy {

namespace {

constexpr size_t kSpareBatches = 8;

void appendNumber(std::string& out, uint64_t n) {
  char digits[20];
  auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

/// Microseconds as milliseconds with three decimals: 1234 -> "1.234".
void appendMillis(std::string& out, std::chrono::microseconds d) {
  uint64_t us = d.count() < 0 ? 0 : static_cast<uint64_t>(d.count());
  appendNumber(out, us / 1000);
  char frac[4] = {'.', static_cast<char>('0' + us % 1000 / 100),
                  static_cast<char>('0' + us % 100 / 10), static_cast<char>('0' + us % 10)};
  out.append(frac, 4);
}

void appendHex16(std::string& out, uint64_t h) {
  static constexpr char kHex[] = "0123456789abcdef";
  char text[16];
  for (int i = 15; i >= 0; --i, h >>= 4) text[i] = kHex[h & 0xF];
  out.append(text, 16);
}

/// "ns/name" -> {"ns", "name"} at the first '/'; a name without one has no namespace.
std::pair<std::string_view, std::string_view> splitRoute(std::string_view route) {
  size_t slash = route.find('/');
  if (slash == std::string_view::npos) return {{}, route};
  return {route.substr(0, slash), route.substr(slash + 1)};
}

std::string_view pathOf(std::string_view target, AccessLogPath mode) {
  if (mode == AccessLogPath::Full) return target;
  return target.substr(0, target.find('?'));
}

/// Writes a line's fields, as JSON members or as text key=value pairs.
struct FieldWriter {
  std::string& out;
  bool json;

  void name(std::string_view n) {
    out.append(json ? ",\"" : " ");
    out.append(n);
    out.append(json ? "\":" : "=");
  }
  void text(std::string_view n, std::string_view v) {
    name(n);
    if (json)
      appendLogJsonString(out, v);
    else
      appendLogTextValue(out, v);
  }
  void number(std::string_view n, uint64_t v) {
    name(n);
    appendNumber(out, v);
  }
  void millis(std::string_view n, std::chrono::microseconds d) {
    name(n);
    appendMillis(out, d);
  }
  /// 16 hex digits, or "" without a key (quoted in both formats then).
  void hash(std::string_view n, std::optional<std::string_view> key) {
    name(n);
    if (json || !key) out.push_back('"');
    if (key) appendHex16(out, hashKey(*key));
    if (json || !key) out.push_back('"');
  }
};

/// A line's fields in order, after the time.
void appendFields(const AccessEntry& e, const AccessLogOptions& o, FieldWriter field) {
  auto [ns, name] = splitRoute(e.route);
  field.text("namespace", ns);
  field.text("stickyroute", name);
  field.text("pod", e.pod);
  field.number("status", e.status);
  field.text("source", e.local ? "proxy" : "upstream");
  field.millis("duration_ms", e.duration);
  field.number("bytes_received", e.bytes_received);
  field.number("bytes_sent", e.bytes_sent);
  field.text("moved_from", e.moved_from);
  field.text("method", e.method);
  if (o.path != AccessLogPath::None) field.text("path", pathOf(e.target, o.path));
  switch (o.key) {
    case AccessLogKey::None:
      break;
    case AccessLogKey::Hash:
      field.hash("key_hash", e.key);
      break;
    case AccessLogKey::Plain:
      field.text("key", e.key.value_or(std::string_view()));
      break;
  }
}

}  // namespace

std::optional<AccessLogKey> parseAccessLogKey(std::string_view text) {
  if (text == "none") return AccessLogKey::None;
  if (text == "hash") return AccessLogKey::Hash;
  if (text == "plain") return AccessLogKey::Plain;
  return std::nullopt;
}

std::optional<AccessLogPath> parseAccessLogPath(std::string_view text) {
  if (text == "none") return AccessLogPath::None;
  if (text == "path") return AccessLogPath::Path;
  if (text == "full") return AccessLogPath::Full;
  return std::nullopt;
}

// ---- formatter ---------------------------------------------------------------------------------

void AccessLineFormatter::appendTime(std::string& out, LogClock::time_point t) {
  auto since_epoch = t.time_since_epoch();
  auto secs = std::chrono::floor<std::chrono::seconds>(since_epoch);
  std::time_t second = secs.count();
  if (second != cached_second_) {
    std::tm tm{};
    gmtime_r(&second, &tm);
    std::strftime(second_text_, sizeof second_text_, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_second_ = second;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - secs).count();
  out.append(second_text_, 19);
  char frac[5] = {'.', static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                  static_cast<char>('0' + ms % 10), 'Z'};
  out.append(frac, 5);
}

void AccessLineFormatter::appendJson(std::string& out, const AccessEntry& e) {
  out.append("{\"time\":\"");
  appendTime(out, e.time);
  out.push_back('"');
  appendFields(e, options_, FieldWriter{out, true});
  out.append("}\n");
}

void AccessLineFormatter::appendText(std::string& out, const AccessEntry& e) {
  appendTime(out, e.time);
  out.append(" info access");
  appendFields(e, options_, FieldWriter{out, false});
  out.push_back('\n');
}

void AccessLineFormatter::append(std::string& out, const AccessEntry& entry) {
  if (options_.format == LogFormat::Json)
    appendJson(out, entry);
  else
    appendText(out, entry);
}

// ---- sink --------------------------------------------------------------------------------------

Result<std::unique_ptr<AccessLogSink>> AccessLogSink::open(const AccessLogOptions& options,
                                                           std::atomic<uint64_t>& dropped) {
  int fd = -1;
  bool owns = false;
  if (options.destination == "stdout") {
    fd = STDOUT_FILENO;
  } else if (options.destination == "stderr") {
    fd = STDERR_FILENO;
  } else {
    fd = ::open(options.destination.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
      return fail("cannot open the access log " + options.destination + ": " +
                  std::strerror(errno) + " (give a writable file, stdout or stderr)");
    owns = true;
  }
  std::unique_ptr<AccessLogSink> sink(new AccessLogSink(options, fd, owns, dropped));
  sink->thread_ = std::thread([s = sink.get()] { s->run(); });
  return sink;
}

AccessLogSink::AccessLogSink(AccessLogOptions options, int fd, bool owns_fd,
                             std::atomic<uint64_t>& dropped)
    : options_(std::move(options)), fd_(fd), owns_fd_(owns_fd), dropped_(dropped) {}

AccessLogSink::~AccessLogSink() {
  stop();
}

bool AccessLogSink::submit(std::string& batch, bool force) {
  if (batch.empty()) return true;
  std::string next;
  {
    std::lock_guard lock(mu_);
    if (!force && !queue_.empty() && queued_bytes_ + batch.size() > kMaxQueuedBytes) return false;
    queued_bytes_ += batch.size();
    queue_.push_back(std::move(batch));
    if (!spare_.empty()) {
      next = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  wake_.notify_one();
  if (next.capacity() < kFlushBytes) next.reserve(kFlushBytes + 4096);
  batch = std::move(next);
  return true;
}

void AccessLogSink::run() {
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything written
    std::string batch = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= batch.size();
    lock.unlock();
    writeAll(batch);
    batch.clear();
    lock.lock();
    if (spare_.size() < kSpareBatches && batch.capacity() <= 2 * kFlushBytes)
      spare_.push_back(std::move(batch));
  }
}

void AccessLogSink::writeAll(const std::string& batch) {
  const char* p = batch.data();
  size_t left = batch.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Lines that cannot be written (a full disk, a closed pipe) are counted, not retried.
      dropped_.fetch_add(std::count(p, p + left, '\n'), std::memory_order_relaxed);
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void AccessLogSink::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  // Batches submitted after the thread ended (a worker stopping late) are written here.
  std::lock_guard lock(mu_);
  for (auto& batch : queue_) writeAll(batch);
  queue_.clear();
  queued_bytes_ = 0;
  if (owns_fd_ && fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

// ---- worker side -------------------------------------------------------------------------------

AccessLogWriter::AccessLogWriter(boost::asio::io_context& io, AccessLogSink& sink)
    : sink_(sink), formatter_(sink.options()), timer_(io) {
  buffer_.reserve(AccessLogSink::kFlushBytes + 4096);
}

AccessLogWriter::~AccessLogWriter() {
  flush(true);
}

void AccessLogWriter::write(const AccessEntry& entry) {
  if (buffer_.size() >= AccessLogSink::kMaxBufferedBytes) {
    if (!refused_) flush();
    if (buffer_.size() >= AccessLogSink::kMaxBufferedBytes) {
      sink_.dropped().fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  formatter_.append(buffer_, entry);
  if (buffer_.size() >= AccessLogSink::kFlushBytes && !refused_)
    flush();
  else
    armTimer();
}

void AccessLogWriter::flush(bool force) {
  refused_ = !sink_.submit(buffer_, force);
  if (refused_) armTimer();
}

void AccessLogWriter::armTimer() {
  if (timer_armed_) return;
  timer_armed_ = true;
  timer_.expires_after(AccessLogSink::kFlushInterval);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // cancelled: the writer is gone
    timer_armed_ = false;
    refused_ = false;
    flush();
  });
}

}  // namespace sticky::proxy
