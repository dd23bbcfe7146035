#include "redis/connection.h"

#include <algorithm>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "redis/tls.h"

namespace sticky::proxy::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kReadChunk = 16 * 1024;

Error disconnected(std::string message) {
  return Error{std::move(message), "Disconnected"};
}

// Why a read or write failed, in words ("the server closed the connection" rather than "End of
// file" or "stream truncated").
std::string whyFailed(const boost::system::error_code& ec) {
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    return "the server closed the connection";
  }
  if (ec.category() == asio::error::get_ssl_category()) return "TLS: " + ec.message();
  return ec.message();
}

}  // namespace

struct Connection::TlsStream {
  TlsStream(tcp::socket& socket, asio::ssl::context& context) : stream(socket, context) {}
  asio::ssl::stream<tcp::socket&> stream;
};

std::shared_ptr<Connection> Connection::create(asio::io_context& io, Timeouts timeouts,
                                               std::shared_ptr<const TlsContext> tls) {
  return std::shared_ptr<Connection>(new Connection(io, timeouts, std::move(tls)));
}

Connection::Connection(asio::io_context& io, Timeouts timeouts,
                       std::shared_ptr<const TlsContext> tls)
    : io_(io),
      timeouts_(timeouts),
      resolver_(io),
      socket_(io),
      tls_context_(std::move(tls)),
      timer_(io),
      connect_timer_(io),
      chunk_(kReadChunk) {}

Connection::~Connection() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

// ---- connecting -------------------------------------------------------------------------------

void Connection::connect(const Address& address, std::chrono::milliseconds timeout,
                         std::function<void(Result<Ok>)> done) {
  address_ = address;
  connect_done_ = std::move(done);
  connect_timer_.expires_after(timeout);
  connect_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || !self->connect_done_) return;
    // Cancelling makes the resolve or connect complete with operation_aborted.
    self->connect_timed_out_ = true;
    self->resolver_.cancel();
    boost::system::error_code ignored;
    self->socket_.close(ignored);
  });
  resolver_.async_resolve(
      address.host, std::to_string(address.port),
      [self = shared_from_this()](boost::system::error_code ec, tcp::resolver::results_type r) {
        if (ec) {
          std::string why = self->connect_timed_out_ ? "timed out" : ec.message();
          self->finishConnect(
              fail("cannot resolve " + self->address_.toString() + ": " + why, "Unreachable"));
          return;
        }
        self->resolved(r);
      });
}

void Connection::resolved(const tcp::resolver::results_type& endpoints) {
  if (connect_timed_out_ || closed_once_) {
    finishConnect(fail("connecting to " + address_.toString() + " timed out", "Unreachable"));
    return;
  }
  asio::async_connect(
      socket_, endpoints,
      [self = shared_from_this()](boost::system::error_code ec, const tcp::endpoint&) {
        if (ec) {
          std::string why = self->connect_timed_out_ ? "timed out" : ec.message();
          self->finishConnect(
              fail("cannot connect to " + self->address_.toString() + ": " + why, "Unreachable"));
          return;
        }
        if (self->tls_context_) {
          self->handshake();
          return;
        }
        self->finishConnect(Ok{});
      });
}

// Within the same deadline as the connect: the connect timer closes the socket, which aborts
// the handshake.
void Connection::handshake() {
  if (connect_timed_out_ || closed_once_) {
    finishConnect(fail("connecting to " + address_.toString() + " timed out", "Unreachable"));
    return;
  }
  tls_ = std::make_unique<TlsStream>(socket_, tls_context_->context());
  if (auto prepared = tls_context_->prepare(tls_->stream.native_handle(), address_.host);
      !prepared) {
    finishConnect(
        fail("TLS to " + address_.toString() + ": " + prepared.error().message, "Unreachable"));
    return;
  }
  tls_->stream.async_handshake(asio::ssl::stream_base::client, [self = shared_from_this()](
                                                                   boost::system::error_code ec) {
    if (ec) {
      std::string why = self->connect_timed_out_ ? "timed out"
                                                 : self->tls_context_->describeFailure(
                                                       self->tls_->stream.native_handle(), ec);
      self->finishConnect(fail(
          "TLS handshake with " + self->address_.toString() + " failed: " + why, "Unreachable"));
      return;
    }
    self->finishConnect(Ok{});
  });
}

void Connection::finishConnect(Result<Ok> result) {
  connect_timer_.cancel();
  if (result && closed_once_) {
    result = fail("the connection to " + address_.toString() + " was closed while connecting",
                  "Unreachable");
  }
  auto done = std::move(connect_done_);
  connect_done_ = nullptr;
  if (result) {
    open_ = true;
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    socket_.set_option(asio::socket_base::keep_alive(true), ignored);
    readMore();
    // Commands sent before the connection was up are written now.
    if (!out_.empty()) scheduleFlush();
    armTimer();
  } else {
    closed_once_ = true;
    failPending(disconnected(result.error().message));
  }
  if (done) done(std::move(result));
}

// ---- writing ----------------------------------------------------------------------------------

void Connection::send(const Command& command, Reply reply) {
  if (!closed_once_) encodeCommand(out_, command);
  expectReply(std::move(reply));
}

void Connection::sendEncoded(std::string_view command, Reply reply) {
  if (!closed_once_) out_.append(command);
  expectReply(std::move(reply));
}

void Connection::expectReply(Reply reply) {
  if (closed_once_) {
    reply(fail("the Redis connection to " + address_.toString() + " is closed", "Disconnected"));
    return;
  }
  auto now = Clock::now();
  pending_.push_back(Pending{std::move(reply), now, now + timeouts_.command});
  armTimer();
  scheduleFlush();
}

void Connection::sendUnanswered(const Command& command) {
  if (closed_once_) return;
  encodeCommand(out_, command);
  scheduleFlush();
}

// The flush runs after the current handler, so every command sent in the meantime shares the
// write.
void Connection::scheduleFlush() {
  if (!open_ || write_busy_ || flush_scheduled_) return;
  flush_scheduled_ = true;
  asio::post(io_, [self = shared_from_this()] {
    self->flush_scheduled_ = false;
    self->flush();
  });
}

void Connection::flush() {
  if (!open_ || write_busy_ || out_.empty()) return;
  write_busy_ = true;
  writing_.clear();
  std::swap(writing_, out_);
  auto written = [self = shared_from_this()](boost::system::error_code ec, size_t) {
    self->write_busy_ = false;
    if (ec) {
      if (self->open_) {
        self->die(disconnected("writing to Redis at " + self->address_.toString() +
                               " failed: " + whyFailed(ec)));
      }
      return;
    }
    self->flush();
  };
  if (tls_) {
    asio::async_write(tls_->stream, asio::buffer(writing_), std::move(written));
  } else {
    asio::async_write(socket_, asio::buffer(writing_), std::move(written));
  }
}

// ---- reading ----------------------------------------------------------------------------------

void Connection::readMore() {
  auto received = [self = shared_from_this()](boost::system::error_code ec, size_t n) {
    if (!self->open_) return;
    if (ec) {
      self->die(disconnected("Redis at " + self->address_.toString() + ": " + whyFailed(ec)));
      return;
    }
    self->in_.append(self->chunk_.data(), n);
    self->consume();
    if (self->open_) self->readMore();
  };
  if (tls_) {
    tls_->stream.async_read_some(asio::buffer(chunk_), std::move(received));
  } else {
    socket_.async_read_some(asio::buffer(chunk_), std::move(received));
  }
}

// Parses every whole value received. A callback may close the connection: stop then.
void Connection::consume() {
  while (open_ && in_start_ < in_.size()) {
    RespParse parse = parseResp(std::string_view(in_).substr(in_start_));
    if (parse.status == RespParse::Status::Incomplete) break;
    if (parse.status == RespParse::Status::Invalid) {
      die(Error{"Redis at " + address_.toString() + " sent bytes that are not RESP: " + parse.error,
                "Protocol"});
      return;
    }
    in_start_ += parse.consumed;
    deliver(std::move(parse.value));
  }
  if (in_start_ == in_.size()) {
    in_.clear();
    in_start_ = 0;
  } else if (in_start_ > kReadChunk) {
    in_.erase(0, in_start_);
    in_start_ = 0;
  }
}

void Connection::deliver(RespValue value) {
  if (value.type == RespType::Push || pending_.empty()) {
    if (push_) {
      push_(std::move(value));
      return;
    }
    die(Error{
        "Redis at " + address_.toString() + " sent a reply nobody asked for: " + describe(value),
        "Protocol"});
    return;
  }
  Pending front = std::move(pending_.front());
  pending_.pop_front();
  if (expired_ > 0) {
    --expired_;  // completed with Timeout already: the late reply is dropped
    return;
  }
  front.reply(std::move(value));
}

// ---- deadlines --------------------------------------------------------------------------------

// Wakes at the earlier of the next live command's deadline and the oldest command's stall. A
// wait armed earlier for a later time (the handshake's longer timeouts) is replaced.
void Connection::armTimer() {
  if (pending_.empty() || !open_) return;
  auto wake = pending_.front().queued + timeouts_.stall;
  if (expired_ < pending_.size()) wake = std::min(wake, pending_[expired_].deadline);
  if (timer_armed_ && timer_wake_ <= wake) return;
  timer_armed_ = true;
  timer_wake_ = wake;
  uint64_t generation = ++timer_generation_;
  timer_.expires_at(wake);
  timer_.async_wait([weak = weak_from_this(), generation](boost::system::error_code ec) {
    auto self = weak.lock();
    if (!self || generation != self->timer_generation_) return;  // replaced
    self->timer_armed_ = false;
    if (ec || !self->open_) return;
    self->timerFired();
  });
}

void Connection::timerFired() {
  auto now = Clock::now();
  if (!pending_.empty() && pending_.front().queued + timeouts_.stall <= now) {
    die(disconnected("Redis at " + address_.toString() + " answered nothing for " +
                     std::to_string(timeouts_.stall.count()) + " ms; taken for dead"));
    return;
  }
  // Collect first: a callback may send (appending to pending_) or close.
  std::vector<Reply> expired;
  while (expired_ < pending_.size() && pending_[expired_].deadline <= now) {
    expired.push_back(std::move(pending_[expired_].reply));
    ++expired_;
  }
  auto self = shared_from_this();
  for (auto& reply : expired) {
    reply(fail("Redis at " + address_.toString() + " did not answer within " +
                   std::to_string(timeouts_.command.count()) + " ms",
               "Timeout"));
  }
  armTimer();
}

// ---- closing ----------------------------------------------------------------------------------

void Connection::failPending(const Error& reason) {
  std::deque<Pending> pending;
  std::swap(pending, pending_);
  size_t expired = std::exchange(expired_, 0);
  for (size_t i = expired; i < pending.size(); ++i) {
    pending[i].reply(unexpected(reason));
  }
}

void Connection::close(const Error& reason) {
  if (closed_once_ && !open_) {
    failPending(reason);
    return;
  }
  closed_once_ = true;
  open_ = false;
  boost::system::error_code ignored;
  resolver_.cancel();
  timer_.cancel();
  connect_timer_.cancel();
  socket_.close(ignored);
  out_.clear();
  auto self = shared_from_this();
  failPending(reason);
}

void Connection::die(const Error& reason) {
  if (closed_once_) return;
  auto self = shared_from_this();
  close(reason);
  if (auto closed = std::move(closed_)) {
    closed_ = nullptr;
    closed(reason);
  }
}

}  // namespace sticky::proxy::redis
