#include "http/local_reply.h"

#include <array>

namespace sticky::proxy {

namespace http = boost::beast::http;
using R = LocalReason;
using S = http::status;

namespace {

constexpr std::array<LocalReplyRow, kLocalReasons> kTable = {{
    {R::NoRequest, S::request_timeout, &ServerStats::client_timeouts,
     "no request arrived within {}"},
    {R::HeadTimeout, S::request_timeout, &ServerStats::client_timeouts,
     "the request head did not arrive within {}"},
    {R::BodyStalled, S::request_timeout, &ServerStats::client_body_timeouts,
     "the request body stalled for {}"},
    {R::HeadTooLarge, S::request_header_fields_too_large, &ServerStats::bad_requests,
     "the request head is larger than {} bytes"},
    {R::TooManyFields, S::request_header_fields_too_large, &ServerStats::bad_requests,
     "the request has more than {} header fields"},
    {R::MalformedHead, S::bad_request, &ServerStats::bad_requests, "malformed request: {}"},
    {R::MalformedBody, S::bad_request, &ServerStats::bad_requests, "malformed request body: {}"},
    {R::ConnectMethod, S::method_not_allowed, &ServerStats::bad_requests,
     "CONNECT is not supported by this proxy"},
    {R::MissingHost, S::bad_request, &ServerStats::bad_requests,
     "an HTTP/1.1 request must carry a Host header"},
    {R::RepeatedHost, S::bad_request, &ServerStats::bad_requests,
     "the request carries more than one Host header"},
    {R::InvalidHost, S::bad_request, &ServerStats::bad_requests,
     "the request's Host (or its target's authority) is not a valid host[:port]"},
    {R::LengthAndEncoding, S::bad_request, &ServerStats::bad_requests,
     "the request carries both Content-Length and Transfer-Encoding"},
    {R::EncodingOnHttp10, S::bad_request, &ServerStats::bad_requests,
     "Transfer-Encoding is not allowed in an HTTP/1.0 request"},
    {R::EncodingNotChunked, S::bad_request, &ServerStats::bad_requests,
     "Transfer-Encoding must end with chunked"},
    {R::UnsupportedCoding, S::not_implemented, &ServerStats::bad_requests,
     "only the chunked transfer coding is supported"},
    {R::NoConfig, S::service_unavailable, nullptr, "the proxy has no configuration loaded yet"},
    {R::NoRoute, S::not_found, &ServerStats::no_route, "no route matches host {} path {}"},
    {R::MissingKey, S::bad_request, nullptr, "the request has no session header"},
    {R::NoEndpoint, S::service_unavailable, nullptr, "no endpoint can take this request"},
    {R::ConnectTimeout, S::gateway_timeout, &ServerStats::upstream_timeouts,
     "endpoint {} did not accept a connection within {}"},
    {R::ConnectFailed, S::bad_gateway, &ServerStats::upstream_errors,
     "endpoint {} closed the connection"},
    {R::ResponseTimeout, S::gateway_timeout, &ServerStats::upstream_timeouts,
     "endpoint {} did not answer within {}"},
    {R::BadResponse, S::bad_gateway, &ServerStats::upstream_errors,
     "endpoint {} sent an invalid response or failed"},
    {R::UnaskedSwitch, S::bad_gateway, &ServerStats::upstream_errors,
     "endpoint {} switched protocols without being asked to"},
    {R::ResponseBodyTimeout, S::gateway_timeout, &ServerStats::upstream_read_timeouts,
     "endpoint {} sent no response bytes for {}"},
    {R::ResponseBodyFailed, S::bad_gateway, &ServerStats::upstream_errors,
     "endpoint {} failed while sending the response"},
    {R::ConnectionLimit, S::service_unavailable, &ServerStats::connections_rejected_limit,
     "the proxy has its limit of {} client connections open; retry later"},
    {R::NoDescriptors, S::service_unavailable, &ServerStats::upstream_fd_exhausted,
     "the proxy has no file descriptor left to connect to endpoint {}; retry later"},
}};

constexpr bool rowsInOrder() {
  for (size_t i = 0; i < kTable.size(); ++i)
    if (static_cast<size_t>(kTable[i].reason) != i) return false;
  return true;
}
static_assert(rowsInOrder(), "kTable rows must be in LocalReason order");

}  // namespace

std::span<const LocalReplyRow, kLocalReasons> localReplyTable() {
  return kTable;
}

LocalReply localReply(LocalReason reason, std::string_view a, std::string_view b) {
  std::string_view sentence = localReplyRow(reason).sentence;
  std::string out;
  out.reserve(sentence.size() + a.size() + b.size());
  std::string_view args[2] = {a, b};
  size_t next = 0;
  while (true) {
    size_t at = sentence.find("{}");
    if (at == std::string_view::npos) break;
    out.append(sentence.substr(0, at));
    if (next < 2) out.append(args[next++]);
    sentence.remove_prefix(at + 2);
  }
  out.append(sentence);
  return {reason, std::move(out)};
}

http::response<http::string_body> renderLocalReply(const LocalReply& reply,
                                                   const LocalReplyFraming& framing) {
  http::response<http::string_body> res(reply.status(), 11);
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  if (!framing.extra_name.empty()) res.set(framing.extra_name, framing.extra_value);
  res.body() = reply.sentence;
  res.body().push_back('\n');
  res.prepare_payload();
  if (framing.head_request) res.body().clear();
  if (!framing.keep_alive)
    res.set(http::field::connection, "close");
  else if (framing.client_version == 10)
    res.set(http::field::connection, "keep-alive");
  return res;
}

}  // namespace sticky::proxy
