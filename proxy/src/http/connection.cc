#include "http/connection.h"

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
#include "server/log.h"

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
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr size_t kLingerBytes = 256 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

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

/// Cancels a socket's pending operations when it passes, so the caller can still answer (408)
/// on the same socket. beast::tcp_stream would close the socket instead.
class Deadline {
 public:
  Deadline(asio::io_context& io, tcp::socket& socket) : timer_(io), socket_(socket) {}

  void arm(Duration d) {
    expired_ = false;
    timer_.expires_after(d);
    timer_.async_wait([this, armed = ++armed_](error_code ec) {
      // On cancellation (re-arm, disarm, destruction) `this` may be gone: touch nothing.
      if (ec || armed != armed_) return;
      expired_ = true;
      error_code ignored;
      socket_.cancel(ignored);
    });
  }
  void disarm() {
    ++armed_;
    timer_.cancel();
  }
  bool expired() const { return expired_; }

 private:
  asio::steady_timer timer_;
  tcp::socket& socket_;
  uint64_t armed_ = 0;
  bool expired_ = false;
};

/// The session_moved header name when `moved_from` is set, else empty (no header).
std::string_view movedHeader(const std::string& moved_from, const HeaderNames& names) {
  return moved_from.empty() ? std::string_view() : std::string_view(names.session_moved);
}

tcp::socket& rawSocket(tcp::socket& s) {
  return s;
}
tcp::socket& rawSocket(beast::tcp_stream& s) {
  return s.socket();
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
  Connection(ForwardingContext& ctx, tcp::socket socket)
      : ctx_(ctx), client_(std::move(socket)), deadline_(ctx.io(), client_) {
    error_code ec;
    auto remote = client_.remote_endpoint(ec);
    if (!ec) client_ip_ = remote.address().to_string();
    client_.set_option(tcp::no_delay(true), ec);
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

  awaitable<void> serve();

 private:
  awaitable<bool> handleRequest();
  awaitable<bool> forward(const Router& router, const Route& route, RouteDecision decision,
                          const std::optional<std::string>& key);
  awaitable<Outcome> exchange(const Endpoint& endpoint, std::unique_ptr<UpstreamConnection>& conn,
                              size_t prebuffered, bool force_fresh);
  awaitable<Outcome> readRequestBodyPiece(size_t offset, size_t& got);
  awaitable<bool> relayResponse(const Route& route, const Endpoint& endpoint,
                                std::unique_ptr<UpstreamConnection> conn,
                                const std::string& moved_from, const HeaderNames& names);
  awaitable<void> tunnel(UpstreamConnection& up);
  /// Builds a response of the proxy's own (plain text `body`) for sendLocal(). Two steps, so
  /// that no temporary lives across a co_await (GCC 12 mishandles some, e.g. in a ?: operand).
  void prepareLocal(http::status status, std::string body, bool keep_alive,
                    std::string_view extra_name = {}, std::string_view extra_value = {});
  awaitable<bool> sendLocal();
  awaitable<bool> respondClientError(error_code ec);
  awaitable<void> lingeringClose();
  void finishUpstream(std::unique_ptr<UpstreamConnection> conn, bool reusable);

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

  ForwardingContext& ctx_;
  tcp::socket client_;
  Deadline deadline_;
  beast::flat_buffer buffer_;
  std::string client_ip_;
  Limits limits_;
  std::optional<http::request_parser<http::buffer_body>> parser_;
  std::optional<http::response_parser<http::buffer_body>> res_parser_;
  std::optional<http::response<http::string_body>> local_;
  bool local_keep_alive_ = false;
  std::unique_ptr<char[]> piece_;
  UpstreamConnection* upstream_ = nullptr;  // the exchange in flight, for close()
  unsigned client_version_ = 11;
  bool client_keep_alive_ = false;
  bool head_request_ = false;
  bool upgrade_ = false;
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
      if (buffer_.capacity() > 2 * kReadSize) buffer_.shrink_to_fit();
      idle_ = true;
      deadline_.arm(first ? limits_.client_header_timeout : limits_.keep_alive_idle_timeout);
      size_t n = co_await client_.async_read_some(buffer_.prepare(kReadSize), onError(ec));
      deadline_.disarm();
      idle_ = false;
      if (ec) {
        if (deadline_.expired()) {
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
    parser_.emplace();
    parser_->header_limit(limits_.max_header_bytes);
    parser_->body_limit(kNoBodyLimit);
    res_parser_.reset();
    body_streamed_ = false;
    client_keep_alive_ = false;
    head_request_ = false;
    deadline_.arm(limits_.client_header_timeout);
    co_await http::async_read_header(client_, buffer_, *parser_, onError(ec));
    deadline_.disarm();
    if (ec) {
      if (deadline_.expired()) {
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
    if (fieldCount(parser_->get()) > limits_.max_header_count) {
      ctx_.stats().bad_requests.fetch_add(1, std::memory_order_relaxed);
      prepareLocal(http::status::request_header_fields_too_large,
                   "the request has more than " + std::to_string(limits_.max_header_count) +
                       " header fields",
                   false);
      co_await sendLocal();
      break;
    }
    bool keep_alive = co_await handleRequest();
    upstream_ = nullptr;
    if (!keep_alive) break;
    first = false;
  }
  if (linger_ && client_.is_open()) co_await lingeringClose();
  closeClient();
}

awaitable<void> Connection::lingeringClose() {
  // Closing with unread input makes the kernel send a reset, which can destroy the response
  // before the client reads it; so half-close, and read what still comes for a moment.
  error_code ec;
  client_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  deadline_.arm(std::chrono::duration_cast<Duration>(kLingerTime));
  size_t drained = 0;
  char sink[4096];
  while (drained < kLingerBytes) {
    size_t n = co_await client_.async_read_some(asio::buffer(sink), onError(ec));
    if (ec) break;
    drained += n;
  }
  deadline_.disarm();
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

awaitable<bool> Connection::sendLocal() {
  error_code ec;
  deadline_.arm(limits_.keep_alive_idle_timeout);
  co_await http::async_write(client_, *local_, onError(ec));
  deadline_.disarm();
  local_.reset();
  co_return !ec && local_keep_alive_;
}

awaitable<bool> Connection::respondClientError(error_code ec) {
  // The client broke its own request body: timed out, malformed chunking, or went away.
  if (deadline_.expired()) {
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

awaitable<bool> Connection::handleRequest() {
  auto& req = parser_->get();
  client_version_ = req.version() >= 11 ? 11 : 10;
  client_keep_alive_ = req.keep_alive();
  head_request_ = req.method() == http::verb::head;

  if (auto problem = checkRequestHead(req, req.version(), req.method_string())) {
    ctx_.stats().bad_requests.fetch_add(1, std::memory_order_relaxed);
    prepareLocal(problem.status, problem.reason, false);
    co_return co_await sendLocal();
  }
  auto router = ctx_.router();
  if (!router) {
    prepareLocal(http::status::service_unavailable, "the proxy has no configuration loaded yet",
                 canKeepAlive());
    co_return co_await sendLocal();
  }
  limits_ = router->config().limits;
  std::string_view target = req.target();
  std::string_view authority = targetAuthority(target);
  std::string_view host = hostWithoutPort(authority.empty() ? req[http::field::host] : authority);
  std::string_view path = targetPath(target);
  const Route* route = router->match(host, path);
  if (!route) {
    ctx_.stats().no_route.fetch_add(1, std::memory_order_relaxed);
    prepareLocal(http::status::not_found,
                 "no route matches host " + std::string(host) + " path " + std::string(path),
                 canKeepAlive());
    co_return co_await sendLocal();
  }
  std::optional<std::string> key;
  if (auto it = req.find(route->config().header); it != req.end()) key = std::string(it->value());
  auto decision =
      route->decide(key ? std::optional<std::string_view>(*key) : std::nullopt, SteadyClock::now());
  if (decision.verdict == Verdict::Reject || !decision.endpoint) {
    const auto& names = router->config().headers;
    int status = decision.status ? decision.status : 503;
    std::string reason(decision.reason.empty() ? "no endpoint can take this request"
                                               : decision.reason);
    prepareLocal(static_cast<http::status>(status), std::move(reason), canKeepAlive(),
                 movedHeader(decision.moved_from, names), decision.moved_from);
    co_return co_await sendLocal();
  }
  co_return co_await forward(*router, *route, std::move(decision), key);
}

awaitable<Outcome> Connection::readRequestBodyPiece(size_t offset, size_t& got) {
  auto& body = parser_->get().body();
  body.data = piece() + offset;
  body.size = kRelayPieceSize - offset;
  error_code ec;
  deadline_.arm(limits_.keep_alive_idle_timeout);
  co_await http::async_read_some(client_, buffer_, *parser_, onError(ec));
  deadline_.disarm();
  if (ec == http::error::need_buffer) ec = {};
  got = kRelayPieceSize - offset - body.size;
  if (ec) {
    co_await respondClientError(ec);  // never keeps the connection
    co_return Outcome::ClientGone;
  }
  co_return Outcome::Response;
}

awaitable<bool> Connection::forward(const Router& router, const Route& route,
                                    RouteDecision decision, const std::optional<std::string>& key) {
  auto& req = parser_->get();
  const HeaderNames& names = router.config().headers;
  upgrade_ = parser_->upgrade() && parser_->is_done() && req.count(http::field::upgrade) > 0;
  std::string forwarded_host(req[http::field::host]);
  bool expect_continue = tokenListContains(req[http::field::expect], "100-continue");

  removeHopByHop(req, upgrade_);
  if (expect_continue) req.erase(http::field::expect);
  req.erase(names.moved_from);
  addForwardedHeaders(req, client_ip_, "http", forwarded_host);
  req.version(11);
  if (parser_->chunked()) {
    req.chunked(true);
  } else if (auto length = parser_->content_length()) {
    req.content_length(*length);
  }

  // Read the first piece of the body before choosing a connection, so a refused connection can
  // be retried elsewhere with the body still in hand.
  size_t prebuffered = 0;
  if (!parser_->is_done()) {
    error_code ec;
    if (expect_continue && client_version_ >= 11) {
      deadline_.arm(limits_.keep_alive_idle_timeout);
      co_await asio::async_write(client_, asio::buffer(kContinue), onError(ec));
      deadline_.disarm();
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

  const Endpoint* endpoint = decision.endpoint;
  std::string moved_from = decision.moved_from;
  int failovers = 0;
  bool force_fresh = false;
  while (true) {
    if (moved_from.empty())
      req.erase(names.moved_from);
    else
      req.set(names.moved_from, moved_from);
    std::unique_ptr<UpstreamConnection> conn;
    Outcome outcome = co_await exchange(*endpoint, conn, prebuffered, force_fresh);
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
      case Outcome::Refused: {
        if (body_streamed_ || failovers >= kMaxFailovers) {
          ctx_.stats().upstream_errors.fetch_add(1, std::memory_order_relaxed);
          prepareLocal(http::status::bad_gateway, "endpoint " + name + " closed the connection",
                       canKeepAlive());
          co_return co_await sendLocal();
        }
        ++failovers;
        force_fresh = false;
        auto next = route.failover(key ? std::optional<std::string_view>(*key) : std::nullopt,
                                   *endpoint, SteadyClock::now());
        if (next.verdict == Verdict::Reject || !next.endpoint) {
          int status = next.status ? next.status : 503;
          std::string reason(next.reason.empty() ? "no endpoint can take this request"
                                                 : next.reason);
          prepareLocal(static_cast<http::status>(status), std::move(reason), canKeepAlive(),
                       movedHeader(next.moved_from, names), next.moved_from);
          co_return co_await sendLocal();
        }
        endpoint = next.endpoint;
        moved_from = next.moved_from;
        continue;
      }
      case Outcome::ConnectTimeout:
        ctx_.stats().upstream_timeouts.fetch_add(1, std::memory_order_relaxed);
        prepareLocal(http::status::gateway_timeout,
                     "endpoint " + name + " did not accept a connection within " +
                         seconds(limits_.upstream_connect_timeout),
                     canKeepAlive());
        co_return co_await sendLocal();
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
                                        size_t prebuffered, bool force_fresh) {
  error_code ec;
  bool fresh = false;
  if (!force_fresh) conn = ctx_.pool().acquire(endpoint.id());
  if (!conn) {
    fresh = true;
    conn = std::make_unique<UpstreamConnection>(ctx_.io(), endpoint.id());
    upstream_ = conn.get();
    conn->stream.expires_after(limits_.upstream_connect_timeout);
    co_await conn->stream.async_connect(endpoint.address(), onError(ec));
    if (ec) co_return ec == beast::error::timeout ? Outcome::ConnectTimeout : Outcome::Refused;
    conn->stream.socket().set_option(tcp::no_delay(true), ec);
  }
  upstream_ = conn.get();

  // Head and the first body piece, then the rest of the body piece by piece.
  auto& req = parser_->get();
  req.body().data = prebuffered ? piece() : nullptr;
  req.body().size = prebuffered;
  req.body().more = !parser_->is_done();
  http::request_serializer<http::buffer_body> sr(req);
  conn->stream.expires_after(limits_.upstream_response_timeout);
  co_await http::async_write(conn->stream, sr, onError(ec));
  if (ec == http::error::need_buffer) ec = {};
  if (ec) {
    if (ec == beast::error::timeout) co_return Outcome::ResponseTimeout;
    co_return fresh ? Outcome::Refused : Outcome::Stale;
  }
  while (!parser_->is_done()) {
    body_streamed_ = true;
    size_t got = 0;
    if (co_await readRequestBodyPiece(0, got) != Outcome::Response) co_return Outcome::ClientGone;
    req.body().data = got ? piece() : nullptr;
    req.body().size = got;
    req.body().more = !parser_->is_done();
    if (got == 0 && req.body().more) continue;
    conn->stream.expires_after(limits_.upstream_response_timeout);
    co_await http::async_write(conn->stream, sr, onError(ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec)
      co_return ec == beast::error::timeout ? Outcome::ResponseTimeout : Outcome::UpstreamError;
  }

  // The response head; 1xx interim answers (except 101) are passed on and skipped.
  auto sent_at = SteadyClock::now();
  bool interim = false;
  while (true) {
    res_parser_.emplace();
    res_parser_->header_limit(kUpstreamHeaderLimit);
    res_parser_->body_limit(kNoBodyLimit);
    if (head_request_) res_parser_->skip(true);
    conn->stream.expires_after(limits_.upstream_response_timeout);
    co_await http::async_read_header(conn->stream, conn->buffer, *res_parser_, onError(ec));
    if (ec) {
      if (ec == beast::error::timeout) co_return Outcome::ResponseTimeout;
      bool nothing_received = !interim && conn->buffer.size() == 0 &&
                              (ec == http::error::end_of_stream || ec == asio::error::eof ||
                               ec == asio::error::connection_reset);
      if (nothing_received) co_return fresh ? Outcome::Refused : Outcome::Stale;
      co_return Outcome::UpstreamError;
    }
    auto& res = res_parser_->get();
    unsigned status = res.result_int();
    if (status >= 200 || status == 101) break;
    interim = true;
    if (client_version_ < 11) continue;
    http::response<http::empty_body> forward_interim;
    forward_interim.version(11);
    forward_interim.result(status);  // as a number: Beast's enum lacks e.g. 103
    forward_interim.reason(res.reason());
    for (auto& f : res) forward_interim.insert(f.name_string(), f.value());
    removeHopByHop(forward_interim, false);
    deadline_.arm(limits_.keep_alive_idle_timeout);
    co_await http::async_write(client_, forward_interim, onError(ec));
    deadline_.disarm();
    if (ec) co_return Outcome::ClientGone;
  }
  latency_ = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - sent_at);
  co_return Outcome::Response;
}

awaitable<bool> Connection::relayResponse(const Route& route, const Endpoint& endpoint,
                                          std::unique_ptr<UpstreamConnection> conn,
                                          const std::string& moved_from, const HeaderNames& names) {
  auto& res = res_parser_->get();
  unsigned status = res.result_int();
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
  bool upstream_reusable = res.keep_alive() && !upgrade_ && !res_parser_->need_eof();
  bool has_body = !res_parser_->is_done();
  bool chunked = res_parser_->chunked();
  auto length = res_parser_->content_length();

  removeHopByHop(res, tunnelling);
  res.erase(names.session_moved);
  if (!moved_from.empty()) res.set(names.session_moved, moved_from);
  res.version(11);
  bool keep_alive = canKeepAlive() && !tunnelling && !ctx_.draining();
  if (has_body) {
    if (chunked || !length) {
      if (client_version_ >= 11)
        res.chunked(true);
      else
        keep_alive = false;  // an HTTP/1.0 client reads the body until we close
    } else {
      res.content_length(*length);
    }
  }
  if (!tunnelling) {
    if (!keep_alive)
      res.set(http::field::connection, "close");
    else if (client_version_ == 10)
      res.set(http::field::connection, "keep-alive");
  }

  error_code ec;
  http::response_serializer<http::buffer_body> sr(res);
  if (!has_body || tunnelling) {
    res.body().data = nullptr;
    res.body().size = 0;
    res.body().more = false;
    deadline_.arm(limits_.keep_alive_idle_timeout);
    co_await http::async_write_header(client_, sr, onError(ec));
    deadline_.disarm();
    if (ec) {
      conn->close();
      co_return false;
    }
    if (tunnelling) {
      co_await tunnel(*conn);
      conn->close();
      co_return false;
    }
    finishUpstream(std::move(conn), upstream_reusable);
    co_return keep_alive;
  }

  bool head_sent = false;
  if (conn->buffer.size() == 0) {
    // No body bytes yet: let the client see the head now (long polls, event streams).
    res.body().data = nullptr;
    res.body().size = 0;
    res.body().more = true;
    deadline_.arm(limits_.keep_alive_idle_timeout);
    co_await http::async_write_header(client_, sr, onError(ec));
    deadline_.disarm();
    if (ec) {
      conn->close();
      co_return false;
    }
    head_sent = true;
  }
  while (!sr.is_done()) {
    auto& body = res.body();
    if (!res_parser_->is_done()) {
      body.data = piece();
      body.size = kRelayPieceSize;
      conn->stream.expires_after(limits_.upstream_response_timeout);
      co_await http::async_read_some(conn->stream, conn->buffer, *res_parser_, onError(ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        conn->close();
        bool timeout = ec == beast::error::timeout;
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
      size_t got = kRelayPieceSize - body.size;
      body.data = got ? piece() : nullptr;
      body.size = got;
      body.more = !res_parser_->is_done();
      if (got == 0 && body.more) continue;
    } else {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
    }
    deadline_.arm(limits_.keep_alive_idle_timeout);
    co_await http::async_write(client_, sr, onError(ec));
    deadline_.disarm();
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      conn->close();
      co_return false;
    }
    head_sent = true;
  }
  finishUpstream(std::move(conn), upstream_reusable);
  co_return keep_alive;
}

void Connection::finishUpstream(std::unique_ptr<UpstreamConnection> conn, bool reusable) {
  upstream_ = nullptr;
  if (reusable && res_parser_->is_done() && conn->buffer.size() == 0 &&
      conn->stream.socket().is_open()) {
    ++conn->exchanges;
    ctx_.pool().release(std::move(conn), SteadyClock::now(),
                        limits_.upstream_max_idle_per_endpoint);
  } else {
    conn->close();
  }
}

/// Copies bytes from `from` to `to` (first whatever `leftover` holds) until EOF, which is passed
/// on as a half-close; any error closes both sockets, which ends the other direction too.
template <class From, class To>
awaitable<void> pump(From& from, To& to, beast::flat_buffer& leftover, char* buf) {
  error_code ec;
  auto close_both = [&] {
    error_code ignored;
    rawSocket(from).close(ignored);
    rawSocket(to).close(ignored);
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
      rawSocket(to).shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    if (ec) co_return close_both();
    co_await asio::async_write(to, asio::buffer(buf, n), onError(ec));
    if (ec) co_return close_both();
  }
}

awaitable<void> runPump(std::shared_ptr<Connection> keep, beast::tcp_stream& from, tcp::socket& to,
                        beast::flat_buffer& leftover, char* buf) {
  co_await pump(from, to, leftover, buf);
}

awaitable<void> Connection::tunnel(UpstreamConnection& up) {
  ctx_.stats().tunnels_active.fetch_add(1, std::memory_order_relaxed);
  deadline_.disarm();
  up.stream.expires_never();
  auto down_piece = ctx_.takePiece();
  bool down_done = false;
  asio::steady_timer wake(ctx_.io());
  wake.expires_at(asio::steady_timer::time_point::max());
  // upstream -> client runs as its own coroutine; client -> upstream runs here. This frame
  // outlives the other one: it waits for it below.
  asio::co_spawn(ctx_.io(),
                 runPump(shared_from_this(), up.stream, client_, up.buffer, down_piece.get()),
                 [&down_done, &wake](std::exception_ptr) {
                   down_done = true;
                   wake.cancel();
                 });
  co_await pump(client_, up.stream, buffer_, piece());
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
    : io_(io), routers_(routers), stats_(stats) {}

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
