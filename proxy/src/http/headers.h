#pragma once
// Header handling of the forwarding path: writing the heads it forwards (hop-by-hop fields
// left out, X-Forwarded-*, framing, the moved-session headers), the request-framing checks
// Beast's parser leaves to us, and host/path extraction for routing. Pure functions over parsed
// heads (head_parser.h), unit-tested in test/proxy/http/headers_test.cc.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/http/status.hpp>

#include "common/result.h"
#include "http/head_parser.h"
#include "http/local_reply.h"

namespace sticky::proxy {

/// The host part of a Host header or authority: "Example.com:8080" -> "Example.com",
/// "[::1]:80" -> "::1", "example.com" -> "example.com". Case is kept (Router::match ignores it).
std::string_view hostWithoutPort(std::string_view host);

/// The path of a request target, without the query: "/a/b?x=1" -> "/a/b";
/// absolute-form "http://h:1/a?x" -> "/a" ("/" when the URI has no path).
std::string_view targetPath(std::string_view target);

/// The authority of an absolute-form target ("http://h:1/a" -> "h:1"); empty for origin-form.
std::string_view targetAuthority(std::string_view target);

/// True if the comma-separated `list` holds `token` (case-insensitive, whitespace trimmed).
bool tokenListContains(std::string_view list, std::string_view token);

/// How a message head is framed when it is written out.
struct Framing {
  enum Kind {
    Keep,     // Content-Length fields pass through as received (no body, or read until close)
    Length,   // Content-Length: `length`, replacing any received
    Chunked,  // Transfer-Encoding: chunked, and no Content-Length
  };
  Kind kind = Keep;
  uint64_t length = 0;
};

/// The forwarding path's rewrite of a request head for the upstream.
struct RequestHeadRewrite {
  Framing framing;
  bool keep_upgrade = false;  // a tunnelled Upgrade: Upgrade stays, Connection becomes "upgrade"
  bool drop_expect = false;   // the proxy answered Expect: 100-continue itself
  /// Dropped from the client's fields; sent with `moved_from_value` when that is not empty.
  std::string_view moved_from_name;
  std::string_view moved_from_value;
  std::string_view client_ip;  // appended to X-Forwarded-For (after every received value)
  std::string_view proto;      // X-Forwarded-Proto
  std::string_view host;       // X-Forwarded-Host, omitted when empty
  /// Sent as Host when the request has none (an HTTP/1.0 client's): the head goes out as
  /// HTTP/1.1, which requires one. The endpoint's "10.0.0.5:8080", say.
  std::string_view default_host;
};

/// What the forwarding path says about the client connection in a response it relays.
enum class ConnectionHeader { None, Close, KeepAlive };

/// The forwarding path's rewrite of an upstream response head for the client.
struct ResponseHeadRewrite {
  Framing framing;
  bool keep_upgrade = false;  // a tunnel (101): Upgrade stays, Connection becomes "upgrade"
  ConnectionHeader connection = ConnectionHeader::None;
  /// Dropped from the upstream's fields; sent with `session_moved_value` when that is not empty.
  std::string_view session_moved_name;
  std::string_view session_moved_value;
};

/// Appends "METHOD target HTTP/1.1" (from the client's `head`), the client's end-to-end fields
/// and the proxy's own (framing, Connection: upgrade, the moved-from header, X-Forwarded-*) to
/// `out`, ending with the empty line. Hop-by-hop fields are left out. The Host is the one the
/// request was routed by: an absolute-form target's authority replaces the client's Host
/// (RFC 9112 3.2.2: "GET http://a/x" with "Host: b" goes out with "Host: a"), and a request
/// without one gets `rewrite.default_host`.
void appendRequestHead(ByteBuffer& out, const MessageHead& head, const RequestHeadRewrite& rewrite);

/// Appends "HTTP/1.1 status reason" (from the upstream's `head`), its end-to-end fields and the
/// proxy's own (framing, Connection, the session-moved header) to `out`, ending with the empty
/// line.
void appendResponseHead(ByteBuffer& out, const MessageHead& head,
                        const ResponseHeadRewrite& rewrite);

/// Checks what Beast's parser accepts but a proxy must not forward: Content-Length together
/// with Transfer-Encoding, a Transfer-Encoding other than exactly "chunked", Transfer-Encoding
/// on HTTP/1.0, a missing or repeated Host on HTTP/1.1, a Host or absolute-form authority that
/// is not host[:port] (RFC 9112 3.2), CONNECT. Ok, or the local reply that refuses the request
/// (local_reply.h: one status, one sentence):
///   "POST / HTTP/1.1" with Host, Content-Length: 3           -> Ok
///   ... with Content-Length and Transfer-Encoding: chunked   -> LengthAndEncoding (400)
///   "GET / HTTP/1.1" with "Host: a b" or an empty Host       -> InvalidHost (400)
///   "GET http://user@a/ HTTP/1.1"                            -> InvalidHost (400)
///   "CONNECT h:443 HTTP/1.1"                                 -> ConnectMethod (405)
Result<Ok, LocalReply> checkRequestHead(const MessageHead& head);

}  // namespace sticky::proxy
