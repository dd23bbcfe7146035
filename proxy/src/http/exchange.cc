#include "http/exchange.h"

#include <atomic>
#include <string>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/field.hpp>

#include "http/drain_aware_read.h"
#include "http/headers.h"
#include "http/read_progress.h"
#include "http/response_relay.h"

// See connection.cc: GCC 12 at -O1 reports a false -Wmismatched-new-delete for Asio's coroutine
// frames.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace sticky::proxy {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
template <class T>
using awaitable = asio::awaitable<T>;

namespace {

constexpr uint32_t kUpstreamHeaderLimit = 64 * 1024;
constexpr int kMaxFailovers = 3;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// A pooled connection idle for less than this is used without first asking the kernel whether
// the upstream closed it (a system call per request); a stale one is retried on a fresh one.
constexpr auto kPooledTrusted = std::chrono::milliseconds(1000);

enum class Outcome {
  Response,         // a final response head arrived
  Refused,          // fresh connection refused/reset before any response byte: fail over
  Stale,            // pooled connection closed before any response byte: retry fresh
  ConnectTimeout,   // 504
  ResponseTimeout,  // 504
  UpstreamError,    // 502
  ClientGone,       // the client went away or broke the request body: close
  NoDescriptors,    // no file descriptor for a fresh connection: 503, the endpoint not blamed
};

/// The session_moved header name when `moved_from` is set, else empty (no header).
std::string_view movedHeader(const std::string& moved_from, const HeaderNames& names) {
  return moved_from.empty() ? std::string_view() : std::string_view(names.session_moved);
}

void prepareUnplaced(Downstream& ds, const RouteDecision& decision, const HeaderNames& names) {
  ds.prepareLocal(unplacedReply(decision), ds.canKeepAlive(),
                  movedHeader(decision.moved_from, names), decision.moved_from);
}

/// One attempt: `prebuffered` body bytes are in the relay piece. With Response, `conn` holds the
/// connection and ds.res_head the final response head.
awaitable<Outcome> exchange(Downstream& ds, const Endpoint& endpoint,
                            std::unique_ptr<UpstreamConnection>& conn, size_t prebuffered,
                            bool force_fresh, std::string_view moved_from,
                            const HeaderNames& names) {
  error_code ec;
  bool fresh = false;
  auto now = SteadyClock::now();
  if (!force_fresh) conn = ds.ctx.pool().acquire(endpoint.id(), now, kPooledTrusted);
  if (!conn) {
    fresh = true;
    conn = std::make_unique<UpstreamConnection>(ds.ctx.io(), endpoint.id());
    ds.upstream = conn.get();
    ds.deadline.arm(ds.limits.upstream_connect_timeout);
    co_await conn->socket.async_connect(endpoint.address(), onError(ec));
    ds.deadline.disarm();
    if (isFdExhaustion(ec)) co_return Outcome::NoDescriptors;  // ours, not the endpoint's
    if (ec) co_return ds.deadline.expired() ? Outcome::ConnectTimeout : Outcome::Refused;
    // Waiting for the connect left the socket registered for writability with the reactor for
    // good, so every ACK from the upstream would wake the worker; register it afresh.
    auto protocol = endpoint.address().protocol();
    int fd = conn->socket.release(ec);
    if (!ec) conn->socket.assign(protocol, fd, ec);
    if (ec) co_return Outcome::Refused;
    conn->socket.set_option(tcp::no_delay(true), ec);
    conn->socket.non_blocking(true, ec);  // for sendNow()
    enableDrainHint(conn->socket);
  }
  ds.upstream = conn.get();

  // Head and the first body piece, then the rest of the body piece by piece.
  auto& parser = *ds.parser;
  bool chunked = parser.chunked();
  RequestHeadRewrite rewrite;
  if (chunked) {
    rewrite.framing.kind = Framing::Chunked;
  } else if (auto length = parser.content_length()) {
    rewrite.framing = {Framing::Length, *length};
  }
  rewrite.keep_upgrade = ds.upgrade;
  rewrite.drop_expect = ds.expect_continue;
  rewrite.moved_from_name = names.moved_from;
  rewrite.moved_from_value = moved_from;
  rewrite.client_ip = ds.client_ip;
  rewrite.proto = "http";
  std::string_view authority = targetAuthority(ds.req_head.target());
  rewrite.host = authority.empty() ? ds.req_head[http::field::host] : authority;
  std::string default_host;  // an HTTP/1.0 request without Host gets the endpoint's
  if (rewrite.host.empty() && ds.req_head.count(http::field::host) == 0) {
    auto address = endpoint.address().address();
    default_host = address.to_string();
    if (address.is_v6()) default_host = "[" + default_host + "]";
    default_host += ":" + std::to_string(endpoint.address().port());
    rewrite.default_host = default_host;
  }
  ds.head_out.clear();
  appendRequestHead(ds.head_out, ds.req_head, rewrite);
  size_t piece_size = prebuffered;
  while (true) {
    bool last = parser.is_done();
    std::string_view suffix = chunked ? frameChunk(ds.head_out, piece_size, last) : "";
    if (!ds.head_out.empty() || piece_size != 0 || !suffix.empty()) {
      auto out = outBuffers(ds.head_out, ds.pieceIfTaken(), piece_size, suffix);
      ds.deadline.clearExpired();
      if (!sendNow(conn->socket, out, ec) && ec == asio::error::would_block)
        co_await sendRest(conn->socket, out, ds.deadline, ds.limits.upstream_response_timeout, ec);
      if (ec) {
        if (ds.deadline.expired()) co_return Outcome::ResponseTimeout;
        if (!ds.body_streamed) co_return fresh ? Outcome::Refused : Outcome::Stale;
        co_return Outcome::UpstreamError;
      }
      ds.head_out.clear();
    }
    if (last) break;
    ds.body_streamed = true;
    if (!co_await ds.readBodyPiece(0, piece_size)) co_return Outcome::ClientGone;
  }

  // The response head; 1xx interim answers (except 101) are passed on and skipped.
  auto sent_at = SteadyClock::now();
  bool interim = false;
  while (true) {
    auto& res_parser = ds.res_parser.emplace(ds.res_head);
    res_parser.header_limit(kUpstreamHeaderLimit);
    if (ds.head_request) res_parser.skip(true);
    ds.deadline.arm(ds.limits.upstream_response_timeout);
    if (!parseBuffered(res_parser, conn->buffer, ec))
      co_await readUntilProgress(conn->socket, conn->buffer, res_parser, onError(ec));
    ds.deadline.disarm();
    if (ec) {
      if (ds.deadline.expired()) co_return Outcome::ResponseTimeout;
      bool nothing_received = !interim && conn->buffer.size() == 0 &&
                              (ec == http::error::end_of_stream || ec == asio::error::eof ||
                               ec == asio::error::connection_reset);
      if (nothing_received) co_return fresh ? Outcome::Refused : Outcome::Stale;
      co_return Outcome::UpstreamError;
    }
    unsigned status = ds.res_head.status();
    if (status >= 200 || status == 101) break;
    interim = true;
    if (ds.client_version < 11) continue;
    ds.head_out.clear();
    appendResponseHead(ds.head_out, ds.res_head, {});
    auto out = outBuffers(ds.head_out, ds.pieceIfTaken(), 0);
    if (!sendNow(ds.client, out, ec) && ec == asio::error::would_block)
      co_await sendRest(ds.client, out, ds.deadline, ds.limits.client_send_timeout, ec);
    if (ec) {
      if (ds.deadline.expired()) ds.countSendTimeout();
      co_return Outcome::ClientGone;
    }
  }
  ds.latency = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - sent_at);
  co_return Outcome::Response;
}

}  // namespace

awaitable<void> RoutingStep::wait() {
  // The store answers on this worker's thread (its Redis connection for the worker's claims) or
  // on its own. On this thread, after claim() returned, the coroutine resumes at once
  // (dispatch): no trip through the scheduler. From another thread, or from inside claim() (an
  // answer at once: Redis is away), it is posted to this coroutine's executor. (Boost 1.74 has
  // no any_completion_handler: a shared_ptr makes the handler copyable.)
  SessionStore* store = route_->store();
  const EndpointId candidate = decision_.candidate;
  auto initiate = [&](auto handler) {
    using Handler = decltype(handler);
    struct Waiting {
      explicit Waiting(Handler&& h) : handler(std::move(h)) {}
      Handler handler;
      std::atomic<bool> claimed{false};  // claim() has returned
    };
    auto waiting = std::make_shared<Waiting>(std::move(handler));
    store->claim(route_->config().name, *key_, candidate, route_->config().ttl,
                 [waiting](ClaimResult result) {
                   auto executor = asio::get_associated_executor(waiting->handler);
                   auto resume = [waiting, result]() mutable { waiting->handler(result); };
                   if (waiting->claimed.load(std::memory_order_acquire))
                     asio::dispatch(executor, std::move(resume));
                   else
                     asio::post(executor, std::move(resume));
                 });
    waiting->claimed.store(true, std::memory_order_release);
  };
  ClaimResult result =
      co_await asio::async_initiate<const asio::use_awaitable_t<>, void(ClaimResult)>(
          initiate, asio::use_awaitable);
  decision_ = route_->settle(*key_, candidate, result, SteadyClock::now());
}

LocalReply unplacedReply(const RouteDecision& decision) {
  LocalReason reason = decision.status == 400 ? LocalReason::MissingKey : LocalReason::NoEndpoint;
  if (decision.reason.empty()) return localReply(LocalReason::NoEndpoint);
  return {reason, std::string(decision.reason)};
}

awaitable<bool> forward(Downstream& ds, const Router& router, const Route& route) {
  const auto& req = ds.req_head;
  const HeaderNames& names = router.config().headers;

  auto step = RoutingStep::decide(route, ds.key, SteadyClock::now());
  if (!step.ready()) co_await step.wait();
  RouteDecision& decision = step.decision();
  if (decision.verdict != Verdict::Forward || !decision.endpoint) {
    prepareUnplaced(ds, decision, names);
    co_return co_await ds.sendLocal();
  }

  auto& parser = *ds.parser;
  ds.upgrade = parser.upgrade() && parser.is_done() && req.count(http::field::upgrade) > 0;
  ds.expect_continue = tokenListContains(req[http::field::expect], "100-continue");

  // Read the first piece of the body before choosing a connection, so a refused connection can
  // be retried elsewhere with the body still in hand.
  size_t prebuffered = 0;
  if (!parser.is_done()) {
    error_code ec;
    if (ds.expect_continue && ds.client_version >= 11) {
      ds.deadline.arm(ds.limits.client_send_timeout);
      co_await asio::async_write(ds.client, asio::buffer(kContinue), onError(ec));
      ds.deadline.disarm();
      if (ec) {
        if (ds.deadline.expired()) ds.countSendTimeout();
        co_return false;
      }
    }
    auto length = parser.content_length();
    bool fits = !parser.chunked() && length && *length <= kRelayPieceSize;
    do {
      size_t got = 0;
      if (!co_await ds.readBodyPiece(prebuffered, got)) co_return false;
      prebuffered += got;
    } while (fits && !parser.is_done() && prebuffered < kRelayPieceSize);
  }

  const Endpoint* endpoint = decision.endpoint;
  std::string moved_from = std::move(decision.moved_from);
  int failovers = 0;
  bool force_fresh = false;
  while (true) {
    std::unique_ptr<UpstreamConnection> conn;
    Outcome outcome =
        co_await exchange(ds, *endpoint, conn, prebuffered, force_fresh, moved_from, names);
    if (outcome == Outcome::Response) {
      // The response, relayed from this frame (a frame of its own would cost more than it
      // carries).
      auto start = startResponse(ds, route, *endpoint, *conn, moved_from, names);
      if (start.kind == ResponseStart::UnaskedSwitch) co_return co_await ds.sendLocal();
      if (start.kind == ResponseStart::Tunnel) {
        co_await tunnelResponse(ds, std::move(conn));
        co_return false;
      }
      BodyRelay relay = bodyRelay(ds, *conn, start.chunked);
      RelayEnd end = co_await relayBody(relay);
      bool reply = false;
      bool keep_alive = finishResponse(ds, end, start, std::move(conn), *endpoint, reply);
      if (reply) co_return co_await ds.sendLocal();
      co_return keep_alive;
    }
    if (conn) conn->close();
    ds.upstream = nullptr;
    const auto& name = endpoint->config().name;
    switch (outcome) {
      case Outcome::Stale:
        if (!ds.body_streamed && !force_fresh) {
          force_fresh = true;  // same endpoint, fresh connection: not a failover
          continue;
        }
        [[fallthrough]];
      case Outcome::Refused:
      case Outcome::ConnectTimeout: {
        // Either way the endpoint cannot be reached now (refused, or a pod whose node is gone
        // dropping the SYNs): it is marked down and the request fails over, as long as the
        // body is still in hand. A timeout is counted once whatever follows; a refusal only
        // when it is what the client is told.
        bool timeout = outcome == Outcome::ConnectTimeout;
        LocalReply unreachable = timeout ? localReply(LocalReason::ConnectTimeout, name,
                                                      seconds(ds.limits.upstream_connect_timeout))
                                         : localReply(LocalReason::ConnectFailed, name);
        if (ds.body_streamed || failovers >= kMaxFailovers) {
          ds.prepareLocal(unreachable, ds.canKeepAlive());
          co_return co_await ds.sendLocal();
        }
        ++failovers;
        force_fresh = false;
        auto next = RoutingStep::failover(route, ds.key, *endpoint, SteadyClock::now());
        if (!next.ready()) co_await next.wait();
        RouteDecision& placed = next.decision();
        if (placed.verdict != Verdict::Forward || !placed.endpoint) {
          // Nowhere to go with the session kept (no moved header): a timeout says what
          // happened better than "no active endpoint" does.
          if (timeout && placed.moved_from.empty() && placed.status == 503) {
            ds.prepareLocal(unreachable, ds.canKeepAlive());
          } else {
            if (timeout) countLocal(ds.ctx.stats(), LocalReason::ConnectTimeout);
            prepareUnplaced(ds, placed, names);
          }
          co_return co_await ds.sendLocal();
        }
        if (timeout) countLocal(ds.ctx.stats(), LocalReason::ConnectTimeout);
        endpoint = placed.endpoint;
        moved_from = std::move(placed.moved_from);
        continue;
      }
      case Outcome::ResponseTimeout:
        ds.prepareLocal(localReply(LocalReason::ResponseTimeout, name,
                                   seconds(ds.limits.upstream_response_timeout)),
                        ds.canKeepAlive());
        co_return co_await ds.sendLocal();
      case Outcome::UpstreamError:
        ds.prepareLocal(localReply(LocalReason::BadResponse, name), ds.canKeepAlive());
        co_return co_await ds.sendLocal();
      case Outcome::NoDescriptors:
        ds.prepareLocal(localReply(LocalReason::NoDescriptors, name), ds.canKeepAlive());
        co_return co_await ds.sendLocal();
      case Outcome::ClientGone:
      case Outcome::Response:
        co_return false;
    }
  }
}

}  // namespace sticky::proxy
