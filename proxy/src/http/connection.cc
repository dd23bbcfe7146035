#include "http/connection.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "http/headers.h"
#include "common/log.h"

// GCC 12 at -O1 (the sanitizer builds) inlines Asio's coroutine frame allocation, which takes its
// memory from ::operator new inside thread_info_base::allocate and gives it back through
// awaitable_frame_base::operator delete, and then reports -Wmismatched-new-delete for the pair.
// They do match (Asio's recycling allocator); the warning is a false positive for this file.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace sticky::proxy {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
template <class T>
using awaitable = asio::awaitable<T>;

/// Completion token: resume the coroutine with the error in `ec` instead of throwing.
auto onError(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

constexpr size_t kReadSize = 16 * 1024;
constexpr uint32_t kUpstreamHeaderLimit = 64 * 1024;
constexpr int kMaxFailovers = 3;
// Bodies are streamed, so they have no size limit. (Not boost::none: Beast 1.74 compares the
// Content-Length against an empty optional and reports body_limit.)
constexpr uint64_t kNoBodyLimit = std::numeric_limits<uint64_t>::max();
constexpr size_t kMaxFreePieces = 32;
constexpr size_t kKeptHeadOutBytes = 8 * 1024;
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr size_t kLingerBytes = 256 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// A pooled connection idle for less than this is used without first asking the kernel whether
// the upstream closed it (a system call per request); a stale one is retried on a fresh one.
constexpr auto kPooledTrusted = std::chrono::milliseconds(1000);

std::string seconds(Duration d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

/// Errors Beast reports for input that is not valid HTTP (as opposed to a peer going away).
bool isParseError(error_code ec) {
  if (ec.category() != http::make_error_code(http::error::bad_chunk).category()) return false;
  return ec != http::error::end_of_stream && ec != http::error::partial_message &&
         ec != http::error::need_more && ec != http::error::need_buffer &&
         ec != http::error::short_read && ec != http::error::stale_parser;
}

/// Parses what `buffer` holds. True when the parser needs more input: read into `buffer`, then
/// call afterRead(). False when it made progress (a head, body bytes, the end) or failed (`ec`).
template <class Parser>
bool needsInput(Parser& parser, beast::flat_buffer& buffer, error_code& ec) {
  ec = {};
  if (buffer.size() == 0) return true;
  size_t used = parser.put(buffer.data(), ec);
  buffer.consume(used);
  if (ec == http::error::need_more) {
    ec = {};
    return true;
  }
  if (ec == http::error::need_buffer) ec = {};  // the body buffer is full
  return false;
}

/// After a read of `n` bytes into `buffer.prepare()`: true to parse again. On end of input a
/// message delimited by the close is finished (no error), any other ends in end_of_stream
/// (nothing received) or partial_message.
template <class Parser>
bool afterRead(Parser& parser, beast::flat_buffer& buffer, size_t n, error_code& ec) {
  if (!ec) {
    buffer.commit(n);
    return true;
  }
  if (ec == asio::error::eof) {
    if (parser.got_some())
      parser.put_eof(ec);
    else
      ec = http::error::end_of_stream;
  }
  return false;
}

/// Appends the chunk framing of an `n`-byte piece (`last`: the body ends with it) to `prefix`;
/// returns what goes after the piece.
std::string_view frameChunk(ByteBuffer& prefix, size_t n, bool last) {
  if (n == 0) return last ? "0\r\n\r\n" : "";
  char digits[16];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n, 16);
  prefix.append(std::string_view(digits, end - digits));
  prefix.append("\r\n");
  return last ? "\r\n0\r\n\r\n" : "\r\n";
}

/// Sends as much of `bufs` as `socket` (non-blocking) takes now and advances `bufs` past it.
/// True when all went out: the usual case, which needs no asynchronous operation and no trip
/// through the scheduler. Else false, with `ec` would_block (async_write the rest) or the error.
template <size_t N>
bool sendNow(tcp::socket& socket, std::array<asio::const_buffer, N>& bufs, error_code& ec) {
  ec = {};
  while (asio::buffer_size(bufs) != 0) {
    size_t sent = socket.write_some(bufs, ec);
    for (auto& b : bufs) {
      size_t n = std::min(sent, b.size());
      b += n;
      sent -= n;
    }
    if (ec) return false;
  }
  return true;
}

/// The session_moved header name when `moved_from` is set, else empty (no header).
std::string_view movedHeader(const std::string& moved_from, const HeaderNames& names) {
  return moved_from.empty() ? std::string_view() : std::string_view(names.session_moved);
}

enum class Outcome {
  Response,         // a final response head arrived
  Refused,          // fresh connection refused/reset before any response byte: fail over
  Stale,            // pooled connection closed before any response byte: retry fresh
  ConnectTimeout,   // 504
  ResponseTimeout,  // 504
  UpstreamError,    // 502
  ClientGone,       // the client went away or broke the request body: close
};

class Connection final : public ClientConnection, public std::enable_shared_from_this<Connection> {
 public:
  Connection(ForwardingContext& ctx, tcp::socket socket) : ctx_(ctx), client_(std::move(socket)) {
    error_code ec;
    auto remote = client_.remote_endpoint(ec);
    if (!ec) client_ip_ = remote.address().to_string();
    client_.set_option(tcp::no_delay(true), ec);
    client_.non_blocking(true, ec);  // for sendNow(); asynchronous operations are unaffected
    head_out_.reserve(1024);
    ctx_.add(this);
    ctx_.stats().connections_active.fetch_add(1, std::memory_order_relaxed);
  }

  ~Connection() override {
    if (piece_) ctx_.returnPiece(std::move(piece_));
    ctx_.remove(this);
    ctx_.stats().connections_active.fetch_sub(1, std::memory_order_relaxed);
  }

  void closeIfIdle() override {
    if (idle_) closeClient();
  }

  void close() override {
    closeClient();
    if (upstream_) upstream_->close();
  }

  void checkDeadline(TimePoint now) override {
    if (now < deadline_) return;
    deadline_ = TimePoint::max();
    expired_ = true;
    error_code ignored;
    client_.cancel(ignored);
    if (upstream_) upstream_->socket.cancel(ignored);
  }

  awaitable<void> serve();

 private:
  /// Routes the parsed request: true with `decision_` set to forward it, false with a local
  /// answer prepared (prepareLocal) instead.
  bool route(std::shared_ptr<const Router>& router, const Route*& route);
  awaitable<bool> forward(const Router& router, const Route& route);
  awaitable<Outcome> exchange(const Endpoint& endpoint, std::unique_ptr<UpstreamConnection>& conn,
                              size_t prebuffered, bool force_fresh, std::string_view moved_from,
                              const HeaderNames& names);
  awaitable<Outcome> readRequestBodyPiece(size_t offset, size_t& got);
  awaitable<bool> relayResponse(const Route& route, const Endpoint& endpoint,
                                std::unique_ptr<UpstreamConnection> conn,
                                const std::string& moved_from, const HeaderNames& names);
  awaitable<void> tunnel(UpstreamConnection& up);
  /// head_out_, then `n` bytes of the relay piece, then `suffix`: what one write sends.
  std::array<asio::const_buffer, 3> outBuffers(size_t n, std::string_view suffix = {}) {
    return {asio::buffer(head_out_.data(), head_out_.size()), asio::buffer(piece_.get(), n),
            asio::buffer(suffix.data(), suffix.size())};
  }
  /// What sendNow() left of `out` (it returned would_block), written asynchronously within
  /// `limit`; `ec` says how it went.
  awaitable<void> sendRest(tcp::socket& socket, std::array<asio::const_buffer, 3>& out,
                           Duration limit, error_code& ec);
  /// Builds a response of the proxy's own (plain text `body`) for sendLocal(). Two steps, so
  /// that no temporary lives across a co_await (GCC 12 mishandles some, e.g. in a ?: operand).
  void prepareLocal(http::status status, std::string body, bool keep_alive,
                    std::string_view extra_name = {}, std::string_view extra_value = {});
  /// prepareLocal() for a decision that placed the request nowhere (Reject, or no endpoint).
  void prepareUnplaced(const RouteDecision& decision, const HeaderNames& names);
  awaitable<bool> sendLocal();
  awaitable<bool> respondClientError(error_code ec);
  awaitable<void> lingeringClose();
  void finishUpstream(std::unique_ptr<UpstreamConnection> conn, bool reusable);

  /// The pending operation is cancelled once `d` has passed (see checkDeadline).
  void arm(Duration d) {
    deadline_ = SteadyClock::now() + d;
    expired_ = false;
  }
  void disarm() { deadline_ = TimePoint::max(); }
  /// Keep-alive is possible only once the request body has been read whole.
  bool canKeepAlive() const { return client_keep_alive_ && parser_ && parser_->is_done(); }
  char* piece() {
    if (!piece_) piece_ = ctx_.takePiece();
    return piece_.get();
  }
  void closeClient() {
    error_code ignored;
    client_.close(ignored);
  }
  std::optional<std::string_view> key() const {
    return has_key_ ? std::optional<std::string_view>(key_) : std::nullopt;
  }

  ForwardingContext& ctx_;
  tcp::socket client_;
  TimePoint deadline_ = TimePoint::max();
  bool expired_ = false;
  beast::flat_buffer buffer_;
  std::string client_ip_;
  ByteBuffer head_out_;  // the head (and chunk framing) being written, reused
  Limits limits_;
  MessageHead req_head_;  // the request's start line and fields, reused from request to request
  MessageHead res_head_;
  std::optional<RequestHeadParser> parser_;
  std::optional<ResponseHeadParser> res_parser_;
  std::optional<http::response<http::string_body>> local_;
  RouteDecision decision_;
  std::string_view key_;  // the sticky key, in req_head_
  bool has_key_ = false;
  bool local_keep_alive_ = false;
  std::unique_ptr<char[]> piece_;
  UpstreamConnection* upstream_ = nullptr;  // the exchange in flight, for close()
  unsigned client_version_ = 11;
  bool client_keep_alive_ = false;
  bool head_request_ = false;
  bool upgrade_ = false;
  bool expect_continue_ = false;
  bool body_streamed_ = false;  // request body read past the first piece: no retry possible
  bool idle_ = false;
  bool linger_ = false;  // we chose to close: drain what the client still sends first
  std::chrono::microseconds latency_{0};
};

awaitable<void> Connection::serve() {
  bool first = true;
  while (client_.is_open()) {
    limits_ = ctx_.limits();
    error_code ec;
    if (buffer_.size() == 0) {
      if (!first && ctx_.draining()) break;
      // Idle: give back what an unusually large message made the buffers grow to.
      if (buffer_.capacity() > 2 * kReadSize) buffer_.shrink_to_fit();
      head_out_.clearAndShrink(kKeptHeadOutBytes);
      req_head_.release();
      res_head_.release();
      idle_ = true;
      arm(first ? limits_.client_header_timeout : limits_.keep_alive_idle_timeout);
      size_t n = co_await client_.async_read_some(buffer_.prepare(kReadSize), onError(ec));
      disarm();
      idle_ = false;
      if (ec) {
        if (expired_) {
          ctx_.stats().client_timeouts.fetch_add(1, std::memory_order_relaxed);
          if (first) {
            prepareLocal(http::status::request_timeout,
                         "no request arrived within " + seconds(limits_.client_header_timeout),
                         false);
            co_await sendLocal();
          }
        }
        break;
      }
      buffer_.commit(n);
    }
    parser_.emplace(req_head_);
    parser_->header_limit(limits_.max_header_bytes);
    parser_->body_limit(kNoBodyLimit);
    res_parser_.reset();
    body_streamed_ = false;
    client_keep_alive_ = false;
    head_request_ = false;
    arm(limits_.client_header_timeout);
    while (needsInput(*parser_, buffer_, ec)) {
      size_t n = co_await client_.async_read_some(buffer_.prepare(kReadSize), onError(ec));
      if (!afterRead(*parser_, buffer_, n, ec)) break;
    }
    disarm();
    if (ec) {
      if (expired_) {
        ctx_.stats().client_timeouts.fetch_add(1, std::memory_order_relaxed);
        prepareLocal(
            http::status::request_timeout,
            "the request head did not arrive within " + seconds(limits_.client_header_timeout),
            false);
        co_await sendLocal();
      } else if (ec == http::error::header_limit) {
        ctx_.stats().bad_requests.fetch_add(1, std::memory_order_relaxed);
        prepareLocal(http::status::request_header_fields_too_large,
                     "the request head is larger than " + std::to_string(limits_.max_header_bytes) +
                         " bytes",
                     false);
        co_await sendLocal();
      } else if (isParseError(ec)) {
        ctx_.stats().bad_requests.fetch_add(1, std::memory_order_relaxed);
        prepareLocal(http::status::bad_request, "malformed request: " + ec.message(), false);
        co_await sendLocal();
      }
      break;
    }
    if (req_head_.fields().size() > limits_.max_header_count) {
      ctx_.stats().bad_requests.fetch_add(1, std::memory_order_relaxed);
      prepareLocal(http::status::request_header_fields_too_large,
                   "the request has more than " + std::to_string(limits_.max_header_count) +
                       " header fields",
                   false);
      co_await sendLocal();
      break;
    }
    std::shared_ptr<const Router> router;
    const Route* matched = nullptr;
    bool keep_alive = false;
    if (route(router, matched))
      keep_alive = co_await forward(*router, *matched);
    else
      keep_alive = co_await sendLocal();
    upstream_ = nullptr;
    if (!keep_alive) break;
    first = false;
  }
  if (linger_ && client_.is_open()) co_await lingeringClose();
  closeClient();
}

bool Connection::route(std::shared_ptr<const Router>& router, const Route*& route) {
  const auto& req = req_head_;
  client_version_ = req.version() >= 11 ? 11 : 10;
  client_keep_alive_ = parser_->keep_alive();
  head_request_ = req.method() == http::verb::head;

  if (auto problem = checkRequestHead(req)) {
    ctx_.stats().bad_requests.fetch_add(1, std::memory_order_relaxed);
    prepareLocal(problem.status, problem.reason, false);
    return false;
  }
  router = ctx_.router();
  if (!router) {
    prepareLocal(http::status::service_unavailable, "the proxy has no configuration loaded yet",
                 canKeepAlive());
    return false;
  }
  limits_ = router->config().limits;
  std::string_view target = req.target();
  std::string_view authority = targetAuthority(target);
  std::string_view host = hostWithoutPort(authority.empty() ? req[http::field::host] : authority);
  std::string_view path = targetPath(target);
  route = router->match(host, path);
  if (!route) {
    ctx_.stats().no_route.fetch_add(1, std::memory_order_relaxed);
    prepareLocal(http::status::not_found,
                 "no route matches host " + std::string(host) + " path " + std::string(path),
                 canKeepAlive());
    return false;
  }
  const HeadField* key_field = req.find(route->config().header);
  has_key_ = key_field != nullptr;
  key_ = has_key_ ? key_field->value : std::string_view();
  decision_ = route->decide(key(), SteadyClock::now());
  if (decision_.verdict == Verdict::Reject || !decision_.endpoint) {
    prepareUnplaced(decision_, router->config().headers);
    return false;
  }
  return true;
}

awaitable<void> Connection::lingeringClose() {
  // Closing with unread input makes the kernel send a reset, which can destroy the response
  // before the client reads it; so half-close, and read what still comes for a moment.
  error_code ec;
  client_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  arm(std::chrono::duration_cast<Duration>(kLingerTime));
  size_t drained = 0;
  char sink[4096];
  while (drained < kLingerBytes) {
    size_t n = co_await client_.async_read_some(asio::buffer(sink), onError(ec));
    if (ec) break;
    drained += n;
  }
  disarm();
}

void Connection::prepareLocal(http::status status, std::string body, bool keep_alive,
                              std::string_view extra_name, std::string_view extra_value) {
  auto& res = local_.emplace(status, 11);
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  if (!extra_name.empty()) res.set(extra_name, extra_value);
  res.body() = std::move(body);
  res.body().push_back('\n');
  res.prepare_payload();
  if (head_request_) res.body().clear();
  local_keep_alive_ = keep_alive && !ctx_.draining();
  if (!local_keep_alive_) {
    res.set(http::field::connection, "close");
    linger_ = true;
  } else if (client_version_ == 10) {
    res.set(http::field::connection, "keep-alive");
  }
}

void Connection::prepareUnplaced(const RouteDecision& decision, const HeaderNames& names) {
  int status = decision.status ? decision.status : 503;
  std::string reason(decision.reason.empty() ? "no endpoint can take this request"
                                             : decision.reason);
  prepareLocal(static_cast<http::status>(status), std::move(reason), canKeepAlive(),
               movedHeader(decision.moved_from, names), decision.moved_from);
}

awaitable<bool> Connection::sendLocal() {
  error_code ec;
  arm(limits_.keep_alive_idle_timeout);
  co_await http::async_write(client_, *local_, onError(ec));
  disarm();
  local_.reset();
  co_return !ec && local_keep_alive_;
}

awaitable<bool> Connection::respondClientError(error_code ec) {
  // The client broke its own request body: timed out, malformed chunking, or went away.
  if (expired_) {
    ctx_.stats().client_timeouts.fetch_add(1, std::memory_order_relaxed);
    prepareLocal(http::status::request_timeout,
                 "the request body stalled for " + seconds(limits_.keep_alive_idle_timeout), false);
    co_return co_await sendLocal();
  }
  if (isParseError(ec)) {
    ctx_.stats().bad_requests.fetch_add(1, std::memory_order_relaxed);
    prepareLocal(http::status::bad_request, "malformed request body: " + ec.message(), false);
    co_return co_await sendLocal();
  }
  co_return false;
}

awaitable<Outcome> Connection::readRequestBodyPiece(size_t offset, size_t& got) {
  parser_->bodyBuffer(piece() + offset, kRelayPieceSize - offset);
  error_code ec;
  arm(limits_.keep_alive_idle_timeout);
  while (needsInput(*parser_, buffer_, ec)) {
    size_t n = co_await client_.async_read_some(buffer_.prepare(kReadSize), onError(ec));
    if (!afterRead(*parser_, buffer_, n, ec)) break;
  }
  disarm();
  got = kRelayPieceSize - offset - parser_->bodySpace();
  if (ec) {
    co_await respondClientError(ec);  // never keeps the connection
    co_return Outcome::ClientGone;
  }
  co_return Outcome::Response;
}

awaitable<bool> Connection::forward(const Router& router, const Route& route) {
  const auto& req = req_head_;
  const HeaderNames& names = router.config().headers;
  upgrade_ = parser_->upgrade() && parser_->is_done() && req.count(http::field::upgrade) > 0;
  expect_continue_ = tokenListContains(req[http::field::expect], "100-continue");

  // Read the first piece of the body before choosing a connection, so a refused connection can
  // be retried elsewhere with the body still in hand.
  size_t prebuffered = 0;
  if (!parser_->is_done()) {
    error_code ec;
    if (expect_continue_ && client_version_ >= 11) {
      arm(limits_.keep_alive_idle_timeout);
      co_await asio::async_write(client_, asio::buffer(kContinue), onError(ec));
      disarm();
      if (ec) co_return false;
    }
    auto length = parser_->content_length();
    bool fits = !parser_->chunked() && length && *length <= kRelayPieceSize;
    do {
      size_t got = 0;
      if (co_await readRequestBodyPiece(prebuffered, got) != Outcome::Response) co_return false;
      prebuffered += got;
    } while (fits && !parser_->is_done() && prebuffered < kRelayPieceSize);
  }

  const Endpoint* endpoint = decision_.endpoint;
  std::string moved_from = std::move(decision_.moved_from);
  int failovers = 0;
  bool force_fresh = false;
  while (true) {
    std::unique_ptr<UpstreamConnection> conn;
    Outcome outcome =
        co_await exchange(*endpoint, conn, prebuffered, force_fresh, moved_from, names);
    if (outcome == Outcome::Response)
      co_return co_await relayResponse(route, *endpoint, std::move(conn), moved_from, names);
    if (conn) conn->close();
    upstream_ = nullptr;
    const auto& name = endpoint->config().name;
    switch (outcome) {
      case Outcome::Stale:
        if (!body_streamed_ && !force_fresh) {
          force_fresh = true;  // same endpoint, fresh connection: not a failover
          continue;
        }
        [[fallthrough]];
      case Outcome::Refused:
      case Outcome::ConnectTimeout: {
        // Either way the endpoint cannot be reached now (refused, or a pod whose node is gone
        // dropping the SYNs): it is marked down and the request fails over, as long as the
        // body is still in hand.
        bool timeout = outcome == Outcome::ConnectTimeout;
        if (timeout) ctx_.stats().upstream_timeouts.fetch_add(1, std::memory_order_relaxed);
        std::string unreachable = timeout ? "endpoint " + name +
                                                " did not accept a connection within " +
                                                seconds(limits_.upstream_connect_timeout)
                                          : "endpoint " + name + " closed the connection";
        auto status = timeout ? http::status::gateway_timeout : http::status::bad_gateway;
        if (body_streamed_ || failovers >= kMaxFailovers) {
          if (!timeout) ctx_.stats().upstream_errors.fetch_add(1, std::memory_order_relaxed);
          prepareLocal(status, std::move(unreachable), canKeepAlive());
          co_return co_await sendLocal();
        }
        ++failovers;
        force_fresh = false;
        auto next = route.failover(key(), *endpoint, SteadyClock::now());
        if (next.verdict == Verdict::Reject || !next.endpoint) {
          // Nowhere to go with the session kept (no moved header): a timeout says what
          // happened better than "no active endpoint" does.
          if (timeout && next.moved_from.empty() && next.status == 503)
            prepareLocal(status, std::move(unreachable), canKeepAlive());
          else
            prepareUnplaced(next, names);
          co_return co_await sendLocal();
        }
        endpoint = next.endpoint;
        moved_from = std::move(next.moved_from);
        continue;
      }
      case Outcome::ResponseTimeout:
        ctx_.stats().upstream_timeouts.fetch_add(1, std::memory_order_relaxed);
        prepareLocal(http::status::gateway_timeout,
                     "endpoint " + name + " did not answer within " +
                         seconds(limits_.upstream_response_timeout),
                     canKeepAlive());
        co_return co_await sendLocal();
      case Outcome::UpstreamError:
        ctx_.stats().upstream_errors.fetch_add(1, std::memory_order_relaxed);
        prepareLocal(http::status::bad_gateway,
                     "endpoint " + name + " sent an invalid response or failed", canKeepAlive());
        co_return co_await sendLocal();
      case Outcome::ClientGone:
      case Outcome::Response:
        co_return false;
    }
  }
}

awaitable<Outcome> Connection::exchange(const Endpoint& endpoint,
                                        std::unique_ptr<UpstreamConnection>& conn,
                                        size_t prebuffered, bool force_fresh,
                                        std::string_view moved_from, const HeaderNames& names) {
  error_code ec;
  bool fresh = false;
  auto now = SteadyClock::now();
  if (!force_fresh) conn = ctx_.pool().acquire(endpoint.id(), now, kPooledTrusted);
  if (!conn) {
    fresh = true;
    conn = std::make_unique<UpstreamConnection>(ctx_.io(), endpoint.id());
    upstream_ = conn.get();
    arm(limits_.upstream_connect_timeout);
    co_await conn->socket.async_connect(endpoint.address(), onError(ec));
    disarm();
    if (ec) co_return expired_ ? Outcome::ConnectTimeout : Outcome::Refused;
    // Waiting for the connect left the socket registered for writability with the reactor for
    // good, so every ACK from the upstream would wake the worker; register it afresh.
    auto protocol = endpoint.address().protocol();
    int fd = conn->socket.release(ec);
    if (!ec) conn->socket.assign(protocol, fd, ec);
    if (ec) co_return Outcome::Refused;
    conn->socket.set_option(tcp::no_delay(true), ec);
    conn->socket.non_blocking(true, ec);  // for sendNow()
  }
  upstream_ = conn.get();

  // Head and the first body piece, then the rest of the body piece by piece.
  bool chunked = parser_->chunked();
  RequestHeadRewrite rewrite;
  if (chunked) {
    rewrite.framing.kind = Framing::Chunked;
  } else if (auto length = parser_->content_length()) {
    rewrite.framing = {Framing::Length, *length};
  }
  rewrite.keep_upgrade = upgrade_;
  rewrite.drop_expect = expect_continue_;
  rewrite.moved_from_name = names.moved_from;
  rewrite.moved_from_value = moved_from;
  rewrite.client_ip = client_ip_;
  rewrite.proto = "http";
  rewrite.host = req_head_[http::field::host];
  head_out_.clear();
  appendRequestHead(head_out_, req_head_, rewrite);
  size_t piece_size = prebuffered;
  while (true) {
    bool last = parser_->is_done();
    std::string_view suffix = chunked ? frameChunk(head_out_, piece_size, last) : "";
    if (!head_out_.empty() || piece_size != 0 || !suffix.empty()) {
      auto out = outBuffers(piece_size, suffix);
      expired_ = false;
      if (!sendNow(conn->socket, out, ec) && ec == asio::error::would_block)
        co_await sendRest(conn->socket, out, limits_.upstream_response_timeout, ec);
      if (ec) {
        if (expired_) co_return Outcome::ResponseTimeout;
        if (!body_streamed_) co_return fresh ? Outcome::Refused : Outcome::Stale;
        co_return Outcome::UpstreamError;
      }
      head_out_.clear();
    }
    if (last) break;
    body_streamed_ = true;
    if (co_await readRequestBodyPiece(0, piece_size) != Outcome::Response)
      co_return Outcome::ClientGone;
  }

  // The response head; 1xx interim answers (except 101) are passed on and skipped.
  auto sent_at = SteadyClock::now();
  bool interim = false;
  while (true) {
    res_parser_.emplace(res_head_);
    res_parser_->header_limit(kUpstreamHeaderLimit);
    res_parser_->body_limit(kNoBodyLimit);
    if (head_request_) res_parser_->skip(true);
    arm(limits_.upstream_response_timeout);
    while (needsInput(*res_parser_, conn->buffer, ec)) {
      size_t n =
          co_await conn->socket.async_read_some(conn->buffer.prepare(kReadSize), onError(ec));
      if (!afterRead(*res_parser_, conn->buffer, n, ec)) break;
    }
    disarm();
    if (ec) {
      if (expired_) co_return Outcome::ResponseTimeout;
      bool nothing_received = !interim && conn->buffer.size() == 0 &&
                              (ec == http::error::end_of_stream || ec == asio::error::eof ||
                               ec == asio::error::connection_reset);
      if (nothing_received) co_return fresh ? Outcome::Refused : Outcome::Stale;
      co_return Outcome::UpstreamError;
    }
    unsigned status = res_head_.status();
    if (status >= 200 || status == 101) break;
    interim = true;
    if (client_version_ < 11) continue;
    head_out_.clear();
    appendResponseHead(head_out_, res_head_, {});
    auto out = outBuffers(0);
    if (!sendNow(client_, out, ec) && ec == asio::error::would_block)
      co_await sendRest(client_, out, limits_.keep_alive_idle_timeout, ec);
    if (ec) co_return Outcome::ClientGone;
  }
  latency_ = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - sent_at);
  co_return Outcome::Response;
}

awaitable<bool> Connection::relayResponse(const Route& route, const Endpoint& endpoint,
                                          std::unique_ptr<UpstreamConnection> conn,
                                          const std::string& moved_from, const HeaderNames& names) {
  unsigned status = res_head_.status();
  route.recordResponse(endpoint, static_cast<int>(status), latency_);
  bool tunnelling = upgrade_ && status == 101;
  if (status == 101 && !upgrade_) {
    conn->close();
    ctx_.stats().upstream_errors.fetch_add(1, std::memory_order_relaxed);
    prepareLocal(
        http::status::bad_gateway,
        "endpoint " + endpoint.config().name + " switched protocols without being asked to", false);
    co_return co_await sendLocal();
  }
  bool upstream_reusable = res_parser_->keep_alive() && !upgrade_;
  bool has_body = !res_parser_->is_done();
  auto length = res_parser_->content_length();

  ResponseHeadRewrite rewrite;
  rewrite.keep_upgrade = tunnelling;
  rewrite.session_moved_name = names.session_moved;
  rewrite.session_moved_value = moved_from;
  bool keep_alive = canKeepAlive() && !tunnelling && !ctx_.draining();
  bool chunked = false;  // towards the client
  if (has_body) {
    if (res_parser_->chunked() || !length) {
      if (client_version_ >= 11) {
        chunked = true;
        rewrite.framing.kind = Framing::Chunked;
      } else {
        keep_alive = false;  // an HTTP/1.0 client reads the body until we close
      }
    } else {
      rewrite.framing = {Framing::Length, *length};
    }
  }
  if (!tunnelling) {
    if (!keep_alive)
      rewrite.connection = ConnectionHeader::Close;
    else if (client_version_ == 10)
      rewrite.connection = ConnectionHeader::KeepAlive;
  }
  head_out_.clear();
  appendResponseHead(head_out_, res_head_, rewrite);

  error_code ec;
  if (!has_body || tunnelling || conn->buffer.size() == 0) {
    // The head alone; with a body still to come, the client sees the head now (long polls,
    // event streams).
    auto out = outBuffers(0);
    if (!sendNow(client_, out, ec) && ec == asio::error::would_block)
      co_await sendRest(client_, out, limits_.keep_alive_idle_timeout, ec);
    head_out_.clear();
    if (ec) {
      conn->close();
      co_return false;
    }
    if (tunnelling) {
      co_await tunnel(*conn);
      conn->close();
      co_return false;
    }
    if (!has_body) {
      finishUpstream(std::move(conn), upstream_reusable);
      co_return keep_alive;
    }
  }

  bool head_sent = head_out_.empty();
  while (true) {
    size_t got = 0;
    if (!res_parser_->is_done()) {
      res_parser_->bodyBuffer(piece(), kRelayPieceSize);
      arm(limits_.upstream_response_timeout);
      while (needsInput(*res_parser_, conn->buffer, ec)) {
        size_t n =
            co_await conn->socket.async_read_some(conn->buffer.prepare(kReadSize), onError(ec));
        if (!afterRead(*res_parser_, conn->buffer, n, ec)) break;
      }
      disarm();
      if (ec) {
        conn->close();
        bool timeout = expired_;
        (timeout ? ctx_.stats().upstream_timeouts : ctx_.stats().upstream_errors)
            .fetch_add(1, std::memory_order_relaxed);
        if (!head_sent) {
          prepareLocal(timeout ? http::status::gateway_timeout : http::status::bad_gateway,
                       "endpoint " + endpoint.config().name + " failed while sending the response",
                       false);
          co_return co_await sendLocal();
        }
        co_return false;  // the response is cut short; closing tells the client
      }
      got = kRelayPieceSize - res_parser_->bodySpace();
    }
    bool last = res_parser_->is_done();
    if (got == 0 && !last) continue;
    std::string_view suffix = chunked ? frameChunk(head_out_, got, last) : "";
    if (!head_out_.empty() || got != 0 || !suffix.empty()) {
      auto out = outBuffers(got, suffix);
      if (!sendNow(client_, out, ec) && ec == asio::error::would_block)
        co_await sendRest(client_, out, limits_.keep_alive_idle_timeout, ec);
      head_out_.clear();
      if (ec) {
        conn->close();
        co_return false;
      }
      head_sent = true;
    }
    if (last) break;
  }
  finishUpstream(std::move(conn), upstream_reusable);
  co_return keep_alive;
}

awaitable<void> Connection::sendRest(tcp::socket& socket, std::array<asio::const_buffer, 3>& out,
                                     Duration limit, error_code& ec) {
  arm(limit);
  co_await asio::async_write(socket, out, onError(ec));
  disarm();
}

void Connection::finishUpstream(std::unique_ptr<UpstreamConnection> conn, bool reusable) {
  upstream_ = nullptr;
  if (reusable && res_parser_->is_done() && conn->buffer.size() == 0 && conn->socket.is_open()) {
    ++conn->exchanges;
    ctx_.pool().release(std::move(conn), SteadyClock::now(),
                        limits_.upstream_max_idle_per_endpoint);
  } else {
    conn->close();
  }
}

/// Copies bytes from `from` to `to` (first whatever `leftover` holds) until EOF, which is passed
/// on as a half-close; any error closes both sockets, which ends the other direction too.
awaitable<void> pump(tcp::socket& from, tcp::socket& to, beast::flat_buffer& leftover, char* buf) {
  error_code ec;
  auto close_both = [&] {
    error_code ignored;
    from.close(ignored);
    to.close(ignored);
  };
  if (leftover.size() != 0) {
    co_await asio::async_write(to, leftover.data(), onError(ec));
    leftover.consume(leftover.size());
    if (ec) co_return close_both();
  }
  while (true) {
    size_t n = co_await from.async_read_some(asio::buffer(buf, kRelayPieceSize), onError(ec));
    if (ec == asio::error::eof) {
      error_code ignored;
      to.shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    if (ec) co_return close_both();
    co_await asio::async_write(to, asio::buffer(buf, n), onError(ec));
    if (ec) co_return close_both();
  }
}

awaitable<void> runPump(std::shared_ptr<Connection> keep, tcp::socket& from, tcp::socket& to,
                        beast::flat_buffer& leftover, char* buf) {
  co_await pump(from, to, leftover, buf);
}

awaitable<void> Connection::tunnel(UpstreamConnection& up) {
  ctx_.stats().tunnels_active.fetch_add(1, std::memory_order_relaxed);
  disarm();
  auto down_piece = ctx_.takePiece();
  bool down_done = false;
  asio::steady_timer wake(ctx_.io());
  wake.expires_at(asio::steady_timer::time_point::max());
  // upstream -> client runs as its own coroutine; client -> upstream runs here. This frame
  // outlives the other one: it waits for it below.
  asio::co_spawn(ctx_.io(),
                 runPump(shared_from_this(), up.socket, client_, up.buffer, down_piece.get()),
                 [&down_done, &wake](std::exception_ptr) {
                   down_done = true;
                   wake.cancel();
                 });
  co_await pump(client_, up.socket, buffer_, piece());
  if (!down_done) {
    error_code ec;
    co_await wake.async_wait(onError(ec));
  }
  ctx_.returnPiece(std::move(down_piece));
  ctx_.stats().tunnels_active.fetch_sub(1, std::memory_order_relaxed);
}

awaitable<void> runConnection(std::shared_ptr<Connection> conn) {
  co_await conn->serve();
}

}  // namespace

ForwardingContext::ForwardingContext(asio::io_context& io, RouterHolder& routers,
                                     ServerStats& stats)
    : io_(io), routers_(routers), stats_(stats), sweep_timer_(io) {}

void ForwardingContext::scheduleSweep() {
  sweeping_ = true;
  sweep_timer_.expires_after(kDeadlineTick);
  sweep_timer_.async_wait([this](error_code ec) {
    if (ec) return;  // destroyed: touch nothing
    sweeping_ = false;
    if (connections_.empty()) return;
    auto now = SteadyClock::now();
    for (auto* c : connections_) c->checkDeadline(now);
    scheduleSweep();
  });
}

std::shared_ptr<const Router> ForwardingContext::router() {
  uint64_t generation = routers_.generation();
  if (generation != generation_) {
    generation_ = generation;
    auto shared = routers_.current();
    // A worker-local control block that holds the shared snapshot: per-request copies touch
    // only this worker's count.
    router_ = shared ? std::shared_ptr<const Router>(
                           shared.get(), [keep = shared](const Router*) mutable { keep.reset(); })
                     : nullptr;
  }
  return router_;
}

const Limits& ForwardingContext::limits() {
  auto r = router();
  return r ? r->config().limits : default_limits_;
}

void ForwardingContext::serve(tcp::socket socket) {
  auto conn = std::make_shared<Connection>(*this, std::move(socket));
  asio::co_spawn(io_, runConnection(std::move(conn)), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      logError(std::string("connection ended by an unexpected exception: ") + ex.what());
    } catch (...) {
      logError("connection ended by an unexpected exception");
    }
  });
}

void ForwardingContext::startDraining() {
  draining_ = true;
  std::vector<ClientConnection*> all(connections_.begin(), connections_.end());
  for (auto* c : all) c->closeIfIdle();
}

void ForwardingContext::closeAll() {
  std::vector<ClientConnection*> all(connections_.begin(), connections_.end());
  for (auto* c : all) c->close();
  pool_.clear();
}

std::unique_ptr<char[]> ForwardingContext::takePiece() {
  if (free_pieces_.empty()) return std::make_unique_for_overwrite<char[]>(kRelayPieceSize);
  auto piece = std::move(free_pieces_.back());
  free_pieces_.pop_back();
  return piece;
}

void ForwardingContext::returnPiece(std::unique_ptr<char[]> piece) {
  if (piece && free_pieces_.size() < kMaxFreePieces) free_pieces_.push_back(std::move(piece));
}

}  // namespace sticky::proxy
