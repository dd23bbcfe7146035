#include "http/headers.h"

#include <doctest/doctest.h>

#include <string>

namespace sticky::proxy {
namespace {

namespace http = boost::beast::http;

HttpFields fieldsOf(std::initializer_list<std::pair<std::string, std::string>> list) {
  HttpFields f;
  for (auto& [k, v] : list) f.insert(k, v);
  return f;
}

TEST_CASE("hostWithoutPort strips the port and IPv6 brackets") {
  CHECK(hostWithoutPort("chat.example.com") == "chat.example.com");
  CHECK(hostWithoutPort("Chat.Example.com:8080") == "Chat.Example.com");
  CHECK(hostWithoutPort("[::1]:80") == "::1");
  CHECK(hostWithoutPort("[::1]") == "::1");
  CHECK(hostWithoutPort("::1") == "::1");  // bare IPv6: no port to strip
  CHECK(hostWithoutPort(" a.b ") == "a.b");
  CHECK(hostWithoutPort("") == "");
}

TEST_CASE("targetPath and targetAuthority handle origin and absolute form") {
  CHECK(targetPath("/a/b?x=1") == "/a/b");
  CHECK(targetPath("/") == "/");
  CHECK(targetPath("/a#frag") == "/a");
  CHECK(targetPath("http://h:1/a/b?x") == "/a/b");
  CHECK(targetPath("http://h:1") == "/");
  CHECK(targetPath("http://h:1?q") == "/");
  CHECK(targetAuthority("http://h:1/a") == "h:1");
  CHECK(targetAuthority("/a/http://x") == "");
  CHECK(targetAuthority("/a") == "");
}

TEST_CASE("tokenListContains is case-insensitive and trims") {
  CHECK(tokenListContains("keep-alive, Upgrade", "upgrade"));
  CHECK(tokenListContains("close", "close"));
  CHECK_FALSE(tokenListContains("closed", "close"));
  CHECK_FALSE(tokenListContains("", "close"));
  CHECK(tokenListContains(" ,, 100-Continue ", "100-continue"));
}

TEST_CASE("removeHopByHop drops hop-by-hop fields and those named in Connection") {
  auto f = fieldsOf({{"Connection", "keep-alive, X-Private"},
                     {"Connection", "x-other"},
                     {"Keep-Alive", "timeout=5"},
                     {"X-Private", "secret"},
                     {"X-Other", "1"},
                     {"Proxy-Authorization", "Basic abc"},
                     {"Proxy-Connection", "keep-alive"},
                     {"TE", "trailers"},
                     {"Trailer", "X-T"},
                     {"Transfer-Encoding", "chunked"},
                     {"Upgrade", "websocket"},
                     {"Content-Length", "5"},
                     {"Client-Id", "42"}});
  removeHopByHop(f, false);
  CHECK(f.count("connection") == 0);
  CHECK(f.count("keep-alive") == 0);
  CHECK(f.count("x-private") == 0);
  CHECK(f.count("x-other") == 0);
  CHECK(f.count("proxy-authorization") == 0);
  CHECK(f.count("proxy-connection") == 0);
  CHECK(f.count("te") == 0);
  CHECK(f.count("trailer") == 0);
  CHECK(f.count("transfer-encoding") == 0);
  CHECK(f.count("upgrade") == 0);
  CHECK(f["content-length"] == "5");
  CHECK(f["client-id"] == "42");
}

TEST_CASE("removeHopByHop keeps Upgrade for a tunnel and says so in Connection") {
  auto f = fieldsOf({{"Connection", "Upgrade, X-Private"},
                     {"Upgrade", "websocket"},
                     {"X-Private", "1"},
                     {"Sec-WebSocket-Key", "abc"}});
  removeHopByHop(f, true);
  CHECK(f["upgrade"] == "websocket");
  CHECK(f["connection"] == "upgrade");
  CHECK(f.count("x-private") == 0);
  CHECK(f["sec-websocket-key"] == "abc");
}

TEST_CASE("addForwardedHeaders appends to X-Forwarded-For and sets proto and host") {
  auto f = fieldsOf({{"X-Forwarded-For", "10.0.0.1"},
                     {"X-Forwarded-For", "10.0.0.2"},
                     {"X-Forwarded-Proto", "https"}});
  addForwardedHeaders(f, "127.0.0.1", "http", "chat.example.com:8080");
  CHECK(f.count("x-forwarded-for") == 1);
  CHECK(f["x-forwarded-for"] == "10.0.0.1, 10.0.0.2, 127.0.0.1");
  CHECK(f["x-forwarded-proto"] == "http");
  CHECK(f["x-forwarded-host"] == "chat.example.com:8080");

  HttpFields empty;
  addForwardedHeaders(empty, "::1", "http", "");
  CHECK(empty["x-forwarded-for"] == "::1");
  CHECK(empty.count("x-forwarded-host") == 0);
}

TEST_CASE("fieldCount counts repeated fields") {
  CHECK(fieldCount(fieldsOf({{"A", "1"}, {"A", "2"}, {"B", "3"}})) == 3);
  CHECK(fieldCount(HttpFields{}) == 0);
}

TEST_CASE("checkRequestHead refuses ambiguous or unsupported framing") {
  auto ok = fieldsOf({{"Host", "h"}, {"Content-Length", "3"}});
  CHECK_FALSE(checkRequestHead(ok, 11, "POST"));
  CHECK_FALSE(
      checkRequestHead(fieldsOf({{"Host", "h"}, {"Transfer-Encoding", "chunked"}}), 11, "POST"));

  auto both = fieldsOf({{"Host", "h"}, {"Content-Length", "3"}, {"Transfer-Encoding", "chunked"}});
  auto problem = checkRequestHead(both, 11, "POST");
  CHECK(problem.status == http::status::bad_request);
  CHECK(problem.reason.find("Content-Length") != std::string::npos);

  CHECK(checkRequestHead(fieldsOf({{"Host", "h"}, {"Transfer-Encoding", "gzip"}}), 11, "POST")
            .status == http::status::bad_request);
  CHECK(checkRequestHead(fieldsOf({{"Host", "h"}, {"Transfer-Encoding", "chunked, chunked"}}), 11,
                         "POST")
            .status == http::status::not_implemented);
  CHECK(checkRequestHead(fieldsOf({{"Host", "h"}, {"Transfer-Encoding", "gzip, chunked"}}), 11,
                         "POST")
            .status == http::status::not_implemented);
  CHECK(checkRequestHead(fieldsOf({{"Transfer-Encoding", "chunked"}}), 10, "POST").status ==
        http::status::bad_request);
  CHECK(checkRequestHead(fieldsOf({}), 11, "GET").status == http::status::bad_request);
  CHECK_FALSE(checkRequestHead(fieldsOf({}), 10, "GET"));
  CHECK(checkRequestHead(fieldsOf({{"Host", "a"}, {"Host", "b"}}), 11, "GET").status ==
        http::status::bad_request);
  CHECK(checkRequestHead(fieldsOf({{"Host", "a"}}), 11, "CONNECT").status ==
        http::status::method_not_allowed);
}

}  // namespace
}  // namespace sticky::proxy
