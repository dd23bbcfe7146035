#pragma once
// Header handling of the forwarding path: which fields are hop-by-hop, X-Forwarded-*, the
// request-framing checks Beast's parser leaves to us, and host/path extraction for routing.
// Pure functions over Beast fields, unit-tested in test/proxy/http/headers_test.cc.

#include <cstddef>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/status.hpp>

namespace sticky::proxy {

using HttpFields = boost::beast::http::fields;

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

/// Removes the hop-by-hop fields: Connection and every field it names, Keep-Alive, Proxy-*,
/// TE, Trailer, Transfer-Encoding (framing is re-set by whoever serializes the message) and
/// Upgrade. With `keep_upgrade` (a tunnelled Upgrade), Upgrade stays and Connection becomes
/// "upgrade".
void removeHopByHop(HttpFields& fields, bool keep_upgrade);

/// X-Forwarded-For gets `client_ip` appended (to all previous values, joined), and
/// X-Forwarded-Proto / X-Forwarded-Host are set to `proto` / `host` (Host omitted if empty).
void addForwardedHeaders(HttpFields& fields, std::string_view client_ip, std::string_view proto,
                         std::string_view host);

/// Number of header fields.
size_t fieldCount(const HttpFields& fields);

/// A problem with a request head that the forwarding path refuses: status and one sentence.
struct RequestProblem {
  boost::beast::http::status status = boost::beast::http::status::ok;
  std::string reason;

  explicit operator bool() const { return status != boost::beast::http::status::ok; }
};

/// Checks what Beast's parser accepts but a proxy must not forward: Content-Length together
/// with Transfer-Encoding, a Transfer-Encoding other than exactly "chunked", Transfer-Encoding
/// on HTTP/1.0, a missing or repeated Host on HTTP/1.1, CONNECT. `version` is 10 or 11 (Beast
/// refuses any other).
RequestProblem checkRequestHead(const HttpFields& fields, unsigned version,
                                std::string_view method);

}  // namespace sticky::proxy
