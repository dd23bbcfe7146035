#include "http/local_reply.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace sticky::proxy {
namespace {

namespace http = boost::beast::http;
using R = LocalReason;

struct Expected {
  LocalReason reason;
  unsigned status;
  std::atomic<uint64_t> ServerStats::*counter;
  std::string a, b;  // the details given
  std::string sentence;
};

// Every reason, written out independently of the table: status, counter, sentence.
const std::vector<Expected> kExpected = {
    {R::NoRequest, 408, &ServerStats::client_timeouts, "10s", "", "no request arrived within 10s"},
    {R::HeadTimeout, 408, &ServerStats::client_timeouts, "1500ms", "",
     "the request head did not arrive within 1500ms"},
    {R::BodyStalled, 408, &ServerStats::client_body_timeouts, "60s", "",
     "the request body stalled for 60s"},
    {R::HeadTooLarge, 431, &ServerStats::bad_requests, "8192", "",
     "the request head is larger than 8192 bytes"},
    {R::TooManyFields, 431, &ServerStats::bad_requests, "100", "",
     "the request has more than 100 header fields"},
    {R::MalformedHead, 400, &ServerStats::bad_requests, "bad method", "",
     "malformed request: bad method"},
    {R::MalformedBody, 400, &ServerStats::bad_requests, "bad chunk", "",
     "malformed request body: bad chunk"},
    {R::ConnectMethod, 405, &ServerStats::bad_requests, "", "",
     "CONNECT is not supported by this proxy"},
    {R::MissingHost, 400, &ServerStats::bad_requests, "", "",
     "an HTTP/1.1 request must carry a Host header"},
    {R::RepeatedHost, 400, &ServerStats::bad_requests, "", "",
     "the request carries more than one Host header"},
    {R::InvalidHost, 400, &ServerStats::bad_requests, "", "",
     "the request's Host (or its target's authority) is not a valid host[:port]"},
    {R::LengthAndEncoding, 400, &ServerStats::bad_requests, "", "",
     "the request carries both Content-Length and Transfer-Encoding"},
    {R::EncodingOnHttp10, 400, &ServerStats::bad_requests, "", "",
     "Transfer-Encoding is not allowed in an HTTP/1.0 request"},
    {R::EncodingNotChunked, 400, &ServerStats::bad_requests, "", "",
     "Transfer-Encoding must end with chunked"},
    {R::UnsupportedCoding, 501, &ServerStats::bad_requests, "", "",
     "only the chunked transfer coding is supported"},
    {R::NoConfig, 503, nullptr, "", "", "the proxy has no configuration loaded yet"},
    {R::NoRoute, 404, &ServerStats::no_route, "shop.example", "/cart",
     "no route matches host shop.example path /cart"},
    {R::MissingKey, 400, nullptr, "", "", "the request has no session header"},
    {R::NoEndpoint, 503, nullptr, "", "", "no endpoint can take this request"},
    {R::ConnectTimeout, 504, &ServerStats::upstream_timeouts, "web-1", "2s",
     "endpoint web-1 did not accept a connection within 2s"},
    {R::ConnectFailed, 502, &ServerStats::upstream_errors, "web-1", "",
     "endpoint web-1 closed the connection"},
    {R::ResponseTimeout, 504, &ServerStats::upstream_timeouts, "web-1", "30s",
     "endpoint web-1 did not answer within 30s"},
    {R::BadResponse, 502, &ServerStats::upstream_errors, "web-1", "",
     "endpoint web-1 sent an invalid response or failed"},
    {R::UnaskedSwitch, 502, &ServerStats::upstream_errors, "web-1", "",
     "endpoint web-1 switched protocols without being asked to"},
    {R::ResponseBodyTimeout, 504, &ServerStats::upstream_read_timeouts, "web-1", "60s",
     "endpoint web-1 sent no response bytes for 60s"},
    {R::ResponseBodyFailed, 502, &ServerStats::upstream_errors, "web-1", "",
     "endpoint web-1 failed while sending the response"},
    {R::ConnectionLimit, 503, &ServerStats::connections_rejected_limit, "10000", "",
     "the proxy has its limit of 10000 client connections open; retry later"},
    {R::NoDescriptors, 503, &ServerStats::upstream_fd_exhausted, "web-1", "",
     "the proxy has no file descriptor left to connect to endpoint web-1; retry later"},
};

/// The value of every counter of `stats`, in declaration order.
std::vector<uint64_t> counters(const ServerStats& s) {
  return {s.connections_accepted.load(),
          static_cast<uint64_t>(s.connections_active.load()),
          s.bad_requests.load(),
          s.no_route.load(),
          s.client_timeouts.load(),
          s.upstream_timeouts.load(),
          s.upstream_errors.load(),
          s.tunnels_active.load(),
          s.config_applies.load(),
          s.config_rejects.load(),
          s.connections_rejected_limit.load(),
          s.accept_fd_exhausted.load(),
          s.upstream_fd_exhausted.load(),
          s.client_body_timeouts.load(),
          s.client_send_timeouts.load(),
          s.upstream_read_timeouts.load(),
          s.tunnel_idle_timeouts.load()};
}

TEST_CASE("every local reason has its status, counter and sentence") {
  REQUIRE(kExpected.size() == kLocalReasons);
  for (size_t i = 0; i < kExpected.size(); ++i) {
    const auto& e = kExpected[i];
    CAPTURE(e.sentence);
    CHECK(static_cast<size_t>(e.reason) == i);
    CHECK(localReplyRow(e.reason).reason == e.reason);
    auto reply = localReply(e.reason, e.a, e.b);
    CHECK(reply.reason == e.reason);
    CHECK(static_cast<unsigned>(reply.status()) == e.status);
    CHECK(reply.sentence == e.sentence);
    CHECK(localReplyRow(e.reason).counter == e.counter);

    // Counting bumps exactly that counter (or none), by one.
    ServerStats stats;
    auto before = counters(stats);
    countLocal(stats, e.reason);
    auto after = counters(stats);
    ServerStats expected;
    if (e.counter) (expected.*e.counter).fetch_add(1);
    CHECK(after == counters(expected));
    CHECK(before == counters(ServerStats{}));

    // A reply that goes out counts the same, plus its status's class in the given counts.
    ServerStats replied;
    CodeClassCounts responses;
    countLocalReply(replied, responses, e.reason);
    CHECK(counters(replied) == counters(expected));
    for (size_t c = 0; c < kCodeClasses.size(); ++c) {
      CAPTURE(kCodeClasses[c]);
      CHECK(responses.get(c) == (c == static_cast<size_t>(e.status / 100 - 1) ? 1u : 0u));
    }
  }
}

LocalReplyFraming framing(bool keep_alive, unsigned version = 11, bool head = false) {
  LocalReplyFraming f;
  f.keep_alive = keep_alive;
  f.client_version = version;
  f.head_request = head;
  return f;
}

TEST_CASE("a local reply renders as plain text with its framing") {
  auto reply = localReply(R::NoRoute, "h", "/p");
  auto closing = renderLocalReply(reply, {});
  CHECK(closing.result() == http::status::not_found);
  CHECK(closing.version() == 11);
  CHECK(closing[http::field::content_type] == "text/plain; charset=utf-8");
  CHECK(closing.body() == "no route matches host h path /p\n");
  CHECK(closing[http::field::content_length] == std::to_string(closing.body().size()));
  CHECK(closing[http::field::connection] == "close");

  auto kept = renderLocalReply(reply, framing(true));
  CHECK(kept.count(http::field::connection) == 0);
  auto kept10 = renderLocalReply(reply, framing(true, 10));
  CHECK(kept10[http::field::connection] == "keep-alive");

  auto head = renderLocalReply(reply, framing(true, 11, true));
  CHECK(head.body().empty());
  CHECK(head[http::field::content_length] == std::to_string(reply.sentence.size() + 1));

  LocalReplyFraming with_moved;
  with_moved.extra_name = "X-Session-Moved";
  with_moved.extra_value = "web-1";
  auto moved = renderLocalReply(localReply(R::NoEndpoint), with_moved);
  CHECK(moved.result() == http::status::service_unavailable);
  CHECK(moved["X-Session-Moved"] == "web-1");
}

TEST_CASE("extra placeholders stay empty and extra details are ignored") {
  CHECK(localReply(R::NoRoute, "h").sentence == "no route matches host h path ");
  CHECK(localReply(R::NoConfig, "ignored").sentence == "the proxy has no configuration loaded yet");
}

}  // namespace
}  // namespace sticky::proxy
