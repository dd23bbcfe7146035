#pragma once
// The client side of a connection on the forwarding path, as its pieces share it: the socket and
// its read buffer, the deadline, the request in flight (head, parser, what it asked for) and the
// response head being relayed. Owned by the client connection (client_connection.h); the
// exchange (exchange.h), the response relay (response_relay.h) and the tunnel borrow it for one
// request at a time. Single-threaded: the worker's.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/connection.h"
#include "http/head_parser.h"
#include "http/local_reply.h"
#include "http/socket_io.h"
#include "routing/router.h"

namespace sticky::proxy {

struct Downstream {
  Downstream(ForwardingContext& ctx, boost::asio::ip::tcp::socket socket);
  ~Downstream();
  Downstream(const Downstream&) = delete;
  Downstream& operator=(const Downstream&) = delete;

  /// The relay piece of this connection (taken from the worker's free list on first use).
  char* piece() {
    if (!piece_) piece_ = ctx.takePiece();
    return piece_.get();
  }
  /// The relay piece if this connection has one (null otherwise): for writes of 0 body bytes.
  const char* pieceIfTaken() const { return piece_.get(); }
  /// Gives the relay piece back to the worker's free list (between requests: an idle
  /// connection holds none).
  void releasePiece() {
    if (piece_) ctx.returnPiece(std::move(piece_));
  }
  /// Keep-alive is possible only once the request body has been read whole.
  bool canKeepAlive() const { return client_keep_alive && parser && parser->is_done(); }
  void closeClient() {
    boost::system::error_code ignored;
    client.close(ignored);
  }
  /// A write to the client ended because clientSendTimeout passed without it taking a byte.
  void countSendTimeout() {
    ctx.stats().client_send_timeouts.fetch_add(1, std::memory_order_relaxed);
  }
  /// The upstream's response head (res_head) reached the client: the one place it is counted
  /// as a response the client got (sticky_responses_total{source="upstream"}).
  void countUpstreamResponse() {
    if (route) route->stats().responses_from_upstream.count(res_head.status());
  }

  /// Prepares a reply of the proxy's own for sendLocal() and counts it (countLocalReply). Kept
  /// alive only when `keep_alive` and the worker is not draining; otherwise "Connection: close"
  /// and the connection lingers before closing. Two steps, so that no temporary lives across a
  /// co_await (GCC 12 mishandles some, e.g. in a ?: operand).
  void prepareLocal(const LocalReply& reply, bool keep_alive, std::string_view extra_name = {},
                    std::string_view extra_value = {});
  /// Sends what prepareLocal() prepared: true if the connection stays open for another request.
  boost::asio::awaitable<bool> sendLocal();

  /// Reads request body bytes into the relay piece from `offset` (up to its end); `got` says how
  /// many. False when the client broke its own body (timed out, malformed chunking, went away):
  /// a 408 or 400 has then been sent when one was due, and the connection must close.
  boost::asio::awaitable<bool> readBodyPiece(size_t offset, size_t& got);

  ForwardingContext& ctx;
  boost::asio::ip::tcp::socket client;
  boost::beast::flat_buffer buffer;  // read from the client, not yet parsed
  Deadline deadline;
  std::string client_ip;
  ByteBuffer head_out;  // the head (and chunk framing) being written, reused
  Limits limits;
  MessageHead req_head;  // the request's start line and fields, reused from request to request
  MessageHead res_head;
  std::optional<RequestHeadParser> parser;
  std::optional<ResponseHeadParser> res_parser;
  UpstreamConnection* upstream = nullptr;  // the exchange in flight, for close()
  const Route* route = nullptr;  // the request's route once matched (its Router is held meanwhile)
  std::optional<std::string_view> key;  // the sticky key (in req_head), nullopt when absent
  unsigned client_version = 11;
  bool client_keep_alive = false;
  bool head_request = false;
  bool upgrade = false;
  bool expect_continue = false;
  bool body_streamed = false;  // request body read past the first piece: no retry possible
  bool linger = false;         // we chose to close: drain what the client still sends first
  std::chrono::microseconds latency{0};
  AccessLogWriter* access_log = nullptr;  // the worker's, null when the access log is off
  AccessRecord access;                    // this request, for its access log line
  /// The client connection that owns this (kept alive by the tunnel's second coroutine).
  std::weak_ptr<void> owner;

 private:
  std::optional<boost::beast::http::response<boost::beast::http::string_body>> local_;
  bool local_keep_alive_ = false;
  std::unique_ptr<char[]> piece_;
};

}  // namespace sticky::proxy
