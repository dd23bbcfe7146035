#include "http/headers.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>
#include <vector>

namespace sticky::proxy {
namespace {

namespace http = boost::beast::http;

/// A request head "METHOD target HTTP/x.y" with `list` as its fields, as HeadParser builds it.
std::unique_ptr<MessageHead> requestOf(
    std::string_view method, std::string_view target,
    std::initializer_list<std::pair<std::string, std::string>> list, unsigned version = 11) {
  auto head = std::make_unique<MessageHead>();
  head->setRequestLine(http::string_to_verb(method), method, target, version);
  for (auto& [k, v] : list) head->addField(http::string_to_field(k), k, v);
  return head;
}

/// A response head "HTTP/1.1 status reason" with `list` as its fields.
std::unique_ptr<MessageHead> responseOf(
    unsigned status, std::string_view reason,
    std::initializer_list<std::pair<std::string, std::string>> list) {
  auto head = std::make_unique<MessageHead>();
  head->setStatusLine(status, reason, 11);
  for (auto& [k, v] : list) head->addField(http::string_to_field(k), k, v);
  return head;
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

/// The lines of a head written by appendRequestHead/appendResponseHead, without the CRLFs;
/// fails the test unless it ends with the empty line and holds no bare LF.
std::vector<std::string> headLines(std::string_view head) {
  std::vector<std::string> lines;
  REQUIRE(head.size() >= 4);
  REQUIRE(head.substr(head.size() - 4) == "\r\n\r\n");
  size_t start = 0;
  while (start < head.size() - 2) {
    auto end = head.find("\r\n", start);
    std::string line(head.substr(start, end - start));
    CHECK(line.find('\n') == std::string::npos);
    lines.push_back(line);
    start = end + 2;
  }
  return lines;
}

bool hasLine(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

size_t linesStartingWith(const std::vector<std::string>& lines, const std::string& prefix) {
  return std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.size() >= prefix.size() &&
           std::equal(prefix.begin(), prefix.end(), l.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) ==
                    std::tolower(static_cast<unsigned char>(b));
           });
  });
}

TEST_CASE("appendRequestHead leaves out hop-by-hop fields and those named in Connection") {
  auto f = requestOf("POST", "/a?b=1",
                     {{"Host", "chat.example.com"},
                      {"Connection", "keep-alive, X-Private"},
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
                      {"Client-Id", "42"}});
  RequestHeadRewrite rewrite;
  rewrite.framing.kind = Framing::Chunked;
  rewrite.client_ip = "10.1.2.3";
  rewrite.proto = "http";
  ByteBuffer out;
  out.append("kept-prefix:");
  appendRequestHead(out, *f, rewrite);
  REQUIRE(out.view().substr(0, 12) == "kept-prefix:");
  auto lines = headLines(out.view().substr(12));
  CHECK(lines.front() == "POST /a?b=1 HTTP/1.1");
  for (auto name : {"connection:", "keep-alive:", "x-private:", "x-other:", "proxy-",
                    "te:", "trailer:", "upgrade:"})
    CHECK_MESSAGE(linesStartingWith(lines, name) == 0, name);
  CHECK(hasLine(lines, "Host: chat.example.com"));
  CHECK(hasLine(lines, "Client-Id: 42"));
  CHECK(linesStartingWith(lines, "transfer-encoding:") == 1);
  CHECK(hasLine(lines, "Transfer-Encoding: chunked"));
  CHECK(linesStartingWith(lines, "content-length:") == 0);
}

TEST_CASE("appendRequestHead keeps Upgrade for a tunnel and says so in Connection") {
  auto f = requestOf("GET", "/ws",
                     {{"Host", "h"},
                      {"Connection", "Upgrade, X-Private"},
                      {"Upgrade", "websocket"},
                      {"X-Private", "1"},
                      {"Sec-WebSocket-Key", "abc"}});
  RequestHeadRewrite rewrite;
  rewrite.keep_upgrade = true;
  rewrite.client_ip = "::1";
  rewrite.proto = "http";
  ByteBuffer out;
  appendRequestHead(out, *f, rewrite);
  auto lines = headLines(out.view());
  CHECK(hasLine(lines, "Upgrade: websocket"));
  CHECK(hasLine(lines, "Connection: upgrade"));
  CHECK(linesStartingWith(lines, "connection:") == 1);
  CHECK(linesStartingWith(lines, "x-private:") == 0);
  CHECK(hasLine(lines, "Sec-WebSocket-Key: abc"));
}

TEST_CASE("appendRequestHead joins X-Forwarded-For and sets proto and host") {
  auto f = requestOf("GET", "/",
                     {{"Host", "chat.example.com:8080"},
                      {"X-Forwarded-For", "10.0.0.1"},
                      {"X-Forwarded-For", " 10.0.0.2 "},
                      {"X-Forwarded-Proto", "https"},
                      {"X-Forwarded-Host", "spoofed"}});
  RequestHeadRewrite rewrite;
  rewrite.client_ip = "127.0.0.1";
  rewrite.proto = "http";
  rewrite.host = "chat.example.com:8080";
  ByteBuffer out;
  appendRequestHead(out, *f, rewrite);
  auto lines = headLines(out.view());
  CHECK(linesStartingWith(lines, "x-forwarded-for:") == 1);
  CHECK(hasLine(lines, "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 127.0.0.1"));
  CHECK(linesStartingWith(lines, "x-forwarded-proto:") == 1);
  CHECK(hasLine(lines, "X-Forwarded-Proto: http"));
  CHECK(linesStartingWith(lines, "x-forwarded-host:") == 1);
  CHECK(hasLine(lines, "X-Forwarded-Host: chat.example.com:8080"));

  rewrite.host = "";
  ByteBuffer bare;
  appendRequestHead(bare, *requestOf("GET", "/", {}), rewrite);
  auto bare_lines = headLines(bare.view());
  CHECK(hasLine(bare_lines, "X-Forwarded-For: 127.0.0.1"));
  CHECK(linesStartingWith(bare_lines, "x-forwarded-host:") == 0);
}

TEST_CASE("appendRequestHead sends the Host the request was routed by") {
  RequestHeadRewrite rewrite;
  rewrite.client_ip = "127.0.0.1";
  rewrite.proto = "http";
  rewrite.default_host = "10.0.0.5:8080";
  // Absolute form: the target's authority replaces the client's Host (RFC 9112 3.2.2).
  ByteBuffer absolute;
  appendRequestHead(absolute, *requestOf("GET", "http://a.example:81/x", {{"Host", "b.example"}}),
                    rewrite);
  auto lines = headLines(absolute.view());
  CHECK(lines.front() == "GET http://a.example:81/x HTTP/1.1");
  CHECK(linesStartingWith(lines, "host:") == 1);
  CHECK(hasLine(lines, "Host: a.example:81"));
  // Origin form keeps the client's Host; without one (HTTP/1.0) the default goes out.
  ByteBuffer origin;
  appendRequestHead(origin, *requestOf("GET", "/x", {{"Host", "b.example"}}), rewrite);
  CHECK(hasLine(headLines(origin.view()), "Host: b.example"));
  CHECK(linesStartingWith(headLines(origin.view()), "host:") == 1);
  ByteBuffer none;
  appendRequestHead(none, *requestOf("GET", "/x", {}, 10), rewrite);
  CHECK(hasLine(headLines(none.view()), "Host: 10.0.0.5:8080"));
}

TEST_CASE("appendRequestHead frames the body and replaces the moved-from header") {
  auto f = requestOf("PUT", "/x",
                     {{"Host", "h"},
                      {"Content-Length", "5"},
                      {"Content-Length", "5"},
                      {"Expect", "100-continue"},
                      {"X-Sticky-Moved-From", "forged"}});
  RequestHeadRewrite rewrite;
  rewrite.framing = {Framing::Length, 5};
  rewrite.drop_expect = true;
  rewrite.moved_from_name = "x-sticky-moved-from";
  rewrite.client_ip = "::1";
  rewrite.proto = "http";
  ByteBuffer out;
  appendRequestHead(out, *f, rewrite);
  auto lines = headLines(out.view());
  CHECK(linesStartingWith(lines, "content-length:") == 1);
  CHECK(hasLine(lines, "Content-Length: 5"));
  CHECK(linesStartingWith(lines, "expect:") == 0);
  CHECK(linesStartingWith(lines, "x-sticky-moved-from:") == 0);

  rewrite.moved_from_value = "pod-a";
  rewrite.drop_expect = false;
  ByteBuffer moved;
  appendRequestHead(moved, *f, rewrite);
  auto moved_lines = headLines(moved.view());
  CHECK(linesStartingWith(moved_lines, "x-sticky-moved-from:") == 1);
  CHECK(hasLine(moved_lines, "x-sticky-moved-from: pod-a"));
  CHECK(hasLine(moved_lines, "Expect: 100-continue"));
}

TEST_CASE("appendResponseHead writes the status line, framing, Connection and the moved header") {
  const std::initializer_list<std::pair<std::string, std::string>> f = {
      {"Content-Type", "text/plain"},
      {"Content-Length", "12"},
      {"Connection", "keep-alive"},
      {"Keep-Alive", "timeout=5"},
      {"Transfer-Encoding", "chunked"},
      {"X-Sticky-Session-Moved", "forged"},
      {"X-End", "kept"}};
  ResponseHeadRewrite rewrite;
  rewrite.session_moved_name = "x-sticky-session-moved";
  ByteBuffer kept;
  appendResponseHead(kept, *responseOf(204, "No Content", f), rewrite);
  auto kept_lines = headLines(kept.view());
  CHECK(kept_lines.front() == "HTTP/1.1 204 No Content");
  CHECK(hasLine(kept_lines, "Content-Length: 12"));  // Framing::Keep passes it through
  CHECK(hasLine(kept_lines, "X-End: kept"));
  CHECK(hasLine(kept_lines, "Content-Type: text/plain"));
  for (auto name : {"connection:", "keep-alive:", "transfer-encoding:", "x-sticky-session-moved:"})
    CHECK_MESSAGE(linesStartingWith(kept_lines, name) == 0, name);

  rewrite.framing.kind = Framing::Chunked;
  rewrite.connection = ConnectionHeader::Close;
  rewrite.session_moved_value = "pod-a";
  ByteBuffer chunked;
  appendResponseHead(chunked, *responseOf(200, "OK", f), rewrite);
  auto chunked_lines = headLines(chunked.view());
  CHECK(chunked_lines.front() == "HTTP/1.1 200 OK");
  CHECK(linesStartingWith(chunked_lines, "content-length:") == 0);
  CHECK(hasLine(chunked_lines, "Transfer-Encoding: chunked"));
  CHECK(hasLine(chunked_lines, "Connection: close"));
  CHECK(hasLine(chunked_lines, "x-sticky-session-moved: pod-a"));
  CHECK(linesStartingWith(chunked_lines, "x-sticky-session-moved:") == 1);

  rewrite.framing = {Framing::Length, 12};
  rewrite.connection = ConnectionHeader::KeepAlive;
  rewrite.session_moved_value = "";
  ByteBuffer length;
  appendResponseHead(length, *responseOf(599, "", f), rewrite);
  auto length_lines = headLines(length.view());
  CHECK(length_lines.front() == "HTTP/1.1 599 ");
  CHECK(linesStartingWith(length_lines, "content-length:") == 1);
  CHECK(hasLine(length_lines, "Connection: keep-alive"));
}

TEST_CASE("checkRequestHead refuses ambiguous or unsupported framing") {
  // The status of a refusal, or ok when the head is accepted.
  auto statusOf = [](const Result<Ok, LocalReply>& r) {
    return r.ok() ? http::status::ok : r.error().status();
  };
  auto ok = requestOf("POST", "/", {{"Host", "h"}, {"Content-Length", "3"}});
  CHECK(checkRequestHead(*ok).ok());
  CHECK(checkRequestHead(
            *requestOf("POST", "/", {{"Host", "h"}, {"Transfer-Encoding", "chunked"}}, 11))
            .ok());

  auto both = requestOf("POST", "/",
                        {{"Host", "h"}, {"Content-Length", "3"}, {"Transfer-Encoding", "chunked"}});
  auto problem = checkRequestHead(*both);
  REQUIRE_FALSE(problem.ok());
  CHECK(problem.error().status() == http::status::bad_request);
  CHECK(problem.error().sentence.find("Content-Length") != std::string::npos);

  CHECK(statusOf(checkRequestHead(
            *requestOf("POST", "/", {{"Host", "h"}, {"Transfer-Encoding", "gzip"}}, 11))) ==
        http::status::bad_request);
  CHECK(statusOf(checkRequestHead(*requestOf(
            "POST", "/", {{"Host", "h"}, {"Transfer-Encoding", "chunked, chunked"}}, 11))) ==
        http::status::not_implemented);
  CHECK(statusOf(checkRequestHead(*requestOf(
            "POST", "/", {{"Host", "h"}, {"Transfer-Encoding", "gzip, chunked"}}, 11))) ==
        http::status::not_implemented);
  CHECK(statusOf(checkRequestHead(*requestOf("POST", "/", {{"Transfer-Encoding", "chunked"}},
                                             10))) == http::status::bad_request);
  CHECK(statusOf(checkRequestHead(*requestOf("GET", "/", {}, 11))) == http::status::bad_request);
  CHECK(checkRequestHead(*requestOf("GET", "/", {}, 10)).ok());
  CHECK(statusOf(checkRequestHead(*requestOf("GET", "/", {{"Host", "a"}, {"Host", "b"}}, 11))) ==
        http::status::bad_request);
  CHECK(statusOf(checkRequestHead(*requestOf("CONNECT", "/", {{"Host", "a"}}, 11))) ==
        http::status::method_not_allowed);
}

TEST_CASE("checkRequestHead refuses a Host or absolute-form authority that is not host[:port]") {
  // "ok", or the sentence of the refusal; `host` null: no Host field.
  auto reasonOf = [](std::string_view target, const char* host, unsigned version = 11) {
    MessageHead head;
    head.setRequestLine(http::verb::get, "GET", target, version);
    if (host) head.addField(http::field::host, "Host", host);
    auto r = checkRequestHead(head);
    return r.ok() ? std::string("ok") : std::string(r.error().sentence);
  };
  const std::string invalid = localReply(LocalReason::InvalidHost).sentence;
  for (const char* host : {"a.example", "a.example:8080", "[::1]:80", "10.0.0.1", "a,b", "a%41"})
    CHECK_MESSAGE(reasonOf("/", host) == "ok", host);
  for (const char* host : {"", "a b", "a, b", "a/b", "user@a", "a\\b", "a\"b"})
    CHECK_MESSAGE(reasonOf("/", host) == invalid, host);
  CHECK(reasonOf("/", "", 10) == invalid);
  CHECK(reasonOf("/", nullptr, 10) == "ok");
  CHECK(reasonOf("http://a.example/x", "b") == "ok");
  CHECK(reasonOf("http://user@a.example/x", "a.example") == invalid);
  CHECK(reasonOf("http:///x", "a.example") == invalid);
}

}  // namespace
}  // namespace sticky::proxy
