#pragma once
// The replies the proxy makes itself, in one table: why (LocalReason), the status, the
// ServerStats counter the reason bumps, and the one sentence of the plain-text body.
//
//   localReply(LocalReason::NoRoute, "shop.example", "/cart")
//     -> 404, stats.no_route, "no route matches host shop.example path /cart"
//   localReply(LocalReason::ResponseTimeout, "web-1", "5s")
//     -> 504, stats.upstream_timeouts, "endpoint web-1 did not answer within 5s"
//
// Pure: building the reply and rendering it (renderLocalReply) do no I/O; the connection sends
// it. Unit-tested row by row in test/proxy/http/local_reply_test.cc.

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/server_stats.h"

namespace sticky::proxy {

enum class LocalReason : uint8_t {
  // The client's request, as it arrives.
  NoRequest,      // 408: nothing arrived within client_header_timeout (also the idle count)
  HeadTimeout,    // 408: the head did not arrive whole in time
  BodyStalled,    // 408: the request body stalled
  HeadTooLarge,   // 431: more than max_header_bytes of head
  TooManyFields,  // 431: more than max_header_count fields
  MalformedHead,  // 400: Beast's parser refused the head
  MalformedBody,  // 400: ... or the body (chunking)
  // checkRequestHead (headers.h): framing a proxy must not forward.
  ConnectMethod,       // 405
  MissingHost,         // 400
  RepeatedHost,        // 400
  InvalidHost,         // 400: a Host (or absolute-form authority) that is no host[:port]
  LengthAndEncoding,   // 400
  EncodingOnHttp10,    // 400
  EncodingNotChunked,  // 400
  UnsupportedCoding,   // 501
  // Routing.
  NoConfig,  // 503: no config loaded yet
  NoRoute,   // 404
  // Route::decide refused: its own sentence replaces the table's (unplacedReply).
  MissingKey,  // 400: the route requires the session header
  NoEndpoint,  // 503: no endpoint can take the request (or the session's endpoint is lost)
  // The upstream.
  ConnectTimeout,       // 504
  ConnectFailed,        // 502
  ResponseTimeout,      // 504
  BadResponse,          // 502
  UnaskedSwitch,        // 502: 101 without an Upgrade request
  ResponseBodyTimeout,  // 504: the response body stalled (before any of it was relayed)
  ResponseBodyFailed,   // 502: ... or failed
  // The proxy's own resources (docs/security.md).
  ConnectionLimit,  // 503: maxConnections client connections are open (sent once, then close)
  NoDescriptors,    // 503: no file descriptor left for an upstream connection
};

inline constexpr size_t kLocalReasons = static_cast<size_t>(LocalReason::NoDescriptors) + 1;

/// One row of the table.
struct LocalReplyRow {
  LocalReason reason;
  boost::beast::http::status status;
  std::atomic<uint64_t> ServerStats::*counter;  // null: the reason is not counted
  /// The body's sentence; each "{}" takes the next argument of localReply().
  std::string_view sentence;
};

/// The whole table, indexed by LocalReason.
std::span<const LocalReplyRow, kLocalReasons> localReplyTable();

inline const LocalReplyRow& localReplyRow(LocalReason reason) {
  return localReplyTable()[static_cast<size_t>(reason)];
}

/// Bumps the counter of `reason` (if it has one): for a reply, and for an event that sends none
/// (an idle keep-alive closed, a response cut after its head went out).
inline void countLocal(ServerStats& stats, LocalReason reason) {
  if (auto counter = localReplyRow(reason).counter)
    (stats.*counter).fetch_add(1, std::memory_order_relaxed);
}

/// A reply for `reason` goes out: its counter, and its status in `responses` (the route's
/// RouteStats::responses_from_proxy, or ServerStats::unrouted_proxy_responses before a route
/// matched). The one place a local reply is counted as a response.
inline void countLocalReply(ServerStats& stats, CodeClassCounts& responses, LocalReason reason) {
  countLocal(stats, reason);
  responses.count(static_cast<unsigned>(localReplyRow(reason).status));
}

/// A reply of the proxy's own: why, and the sentence with its details filled in.
struct LocalReply {
  LocalReason reason;
  std::string sentence;

  boost::beast::http::status status() const { return localReplyRow(reason).status; }
};

/// The reply for `reason`, its sentence's "{}"s replaced by `a`, then `b`.
LocalReply localReply(LocalReason reason, std::string_view a = {}, std::string_view b = {});

/// How a local reply goes out on a connection.
struct LocalReplyFraming {
  bool keep_alive = false;       // false: "Connection: close"
  unsigned client_version = 11;  // 10 with keep_alive: "Connection: keep-alive"
  bool head_request = false;     // HEAD: Content-Length of the body, but no body
  std::string_view extra_name;   // one more field (the session-moved header), when not empty
  std::string_view extra_value;
};

/// The HTTP/1.1 response for `reply`: text/plain, the sentence and a newline as the body.
boost::beast::http::response<boost::beast::http::string_body> renderLocalReply(
    const LocalReply& reply, const LocalReplyFraming& framing);

}  // namespace sticky::proxy
