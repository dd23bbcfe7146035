#include "http/head_parser.h"

#include <doctest/doctest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

#include <string>
#include <string_view>

namespace sticky::proxy {
namespace {

namespace http = boost::beast::http;
using error_code = boost::system::error_code;

/// Feeds `text` to `parser` in one put(); returns the bytes it used.
template <bool isRequest>
size_t feed(HeadParser<isRequest>& parser, std::string_view text, error_code& ec) {
  return parser.put(boost::asio::buffer(text.data(), text.size()), ec);
}

TEST_CASE("HeadParser records the request line and every field as received") {
  MessageHead head;
  RequestHeadParser parser(head);
  std::string text =
      "POST /a/b?x=1 HTTP/1.1\r\n"
      "Host: chat.example.com\r\n"
      "client-id:   42  \r\n"
      "X-Dup: one\r\n"
      "x-dup: two\r\n"
      "Content-Length: 0\r\n"
      "\r\n";
  error_code ec;
  size_t used = feed(parser, text, ec);
  REQUIRE_FALSE(ec);
  CHECK(used == text.size());
  CHECK(parser.is_done());
  text.assign(text.size(), '#');  // the head keeps its own copy

  CHECK(head.method() == http::verb::post);
  CHECK(head.methodString() == "POST");
  CHECK(head.target() == "/a/b?x=1");
  CHECK(head.version() == 11);
  REQUIRE(head.fields().size() == 5);
  CHECK(head.fields()[0].id == http::field::host);
  CHECK(head.fields()[0].name == "Host");
  CHECK(head.fields()[1].id == http::field::unknown);
  CHECK(head.fields()[1].name == "client-id");
  CHECK(head.fields()[1].value == "42");  // surrounding whitespace is not part of the value
  CHECK(head[http::field::host] == "chat.example.com");
  CHECK(head[http::field::expect].empty());
  REQUIRE(head.find("CLIENT-ID") != nullptr);
  CHECK(head.find("CLIENT-ID")->value == "42");
  CHECK(head.find("client-i") == nullptr);
  CHECK(head.find("x-dup")->value == "one");  // the first of repeated fields
  CHECK(head.count(http::field::content_length) == 1);
  CHECK(head.count(http::field::upgrade) == 0);
}

TEST_CASE("HeadParser keeps its views valid however many fields the head has") {
  MessageHead head;
  RequestHeadParser parser(head);
  std::string text = "GET / HTTP/1.0\r\n";
  for (int i = 0; i < 300; ++i)
    text += "X-Field-" + std::to_string(i) + ": value-" + std::to_string(i) + "\r\n";
  text += "\r\n";
  error_code ec;
  feed(parser, text, ec);
  REQUIRE_FALSE(ec);
  CHECK(head.version() == 10);
  REQUIRE(head.fields().size() == 300);
  for (int i = 0; i < 300; i += 37) {
    CHECK(head.fields()[i].name == "X-Field-" + std::to_string(i));
    CHECK(head.fields()[i].value == "value-" + std::to_string(i));
  }
  CHECK(head.target() == "/");
  CHECK_FALSE(parser.keep_alive());  // HTTP/1.0 without Connection: keep-alive
}

TEST_CASE("release() forgets the head, and a head parsed after it is whole") {
  MessageHead head;
  error_code ec;
  {
    RequestHeadParser big(head);
    big.header_limit(64 * 1024);
    std::string text = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(20000, 'b') + "\r\n";
    for (int i = 0; i < 200; ++i) text += "X-" + std::to_string(i) + ": v\r\n";
    feed(big, text + "\r\n", ec);
    REQUIRE_FALSE(ec);
    REQUIRE(head.fields().size() == 202);
  }
  head.release();
  CHECK(head.fields().empty());
  CHECK(head.target().empty());
  RequestHeadParser next(head);
  feed(next, "GET /next HTTP/1.1\r\nHost: b\r\n\r\n", ec);
  REQUIRE_FALSE(ec);
  CHECK(head.target() == "/next");
  CHECK(head[http::field::host] == "b");
}

TEST_CASE("a new HeadParser on a used head starts it afresh") {
  MessageHead head;
  error_code ec;
  {
    RequestHeadParser first(head);
    feed(first, "GET /one HTTP/1.1\r\nHost: a\r\nX-Only-First: 1\r\n\r\n", ec);
    REQUIRE_FALSE(ec);
  }
  RequestHeadParser second(head);
  CHECK(head.fields().empty());
  feed(second, "GET /two HTTP/1.1\r\nHost: b\r\n\r\n", ec);
  REQUIRE_FALSE(ec);
  CHECK(head.target() == "/two");
  REQUIRE(head.fields().size() == 1);
  CHECK(head[http::field::host] == "b");
  CHECK(head.find("x-only-first") == nullptr);
}

TEST_CASE("HeadParser puts the body into the caller's buffer piece by piece") {
  MessageHead head;
  RequestHeadParser parser(head);
  std::string text = "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
  error_code ec;
  size_t used = feed(parser, text, ec);
  REQUIRE_FALSE(ec);  // the head alone
  CHECK(parser.is_header_done());
  std::string_view rest = std::string_view(text).substr(used);

  // No buffer yet: nothing of the body is taken.
  used = feed(parser, rest, ec);
  CHECK(ec == http::error::need_buffer);
  CHECK(used == 0);

  char piece[4];
  parser.bodyBuffer(piece, sizeof piece);
  ec = {};
  used = feed(parser, rest, ec);
  CHECK(ec == http::error::need_buffer);
  CHECK(used == 4);
  CHECK(parser.bodySpace() == 0);
  CHECK(std::string_view(piece, 4) == "0123");
  rest.remove_prefix(used);

  char big[64];
  parser.bodyBuffer(big, sizeof big);
  ec = {};
  used = feed(parser, rest, ec);
  CHECK_FALSE(ec);
  CHECK(used == 6);
  CHECK(sizeof big - parser.bodySpace() == 6);
  CHECK(std::string_view(big, 6) == "456789");
  CHECK(parser.is_done());
  CHECK(parser.keep_alive());
}

TEST_CASE("HeadParser de-chunks a chunked body and reports the framing") {
  MessageHead head;
  ResponseHeadParser parser(head);
  std::string text =
      "HTTP/1.1 201 Made It\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n5;ext=1\r\ndefgh\r\n0\r\nX-Trailer: t\r\n\r\n";
  error_code ec;
  size_t used = feed(parser, text, ec);
  REQUIRE_FALSE(ec);
  CHECK(head.status() == 201);
  CHECK(head.reason() == "Made It");
  CHECK(parser.chunked());
  CHECK_FALSE(parser.content_length().has_value());
  std::string body;
  char piece[16];
  std::string_view rest = std::string_view(text).substr(used);
  while (!parser.is_done()) {
    parser.bodyBuffer(piece, sizeof piece);
    ec = {};
    used = feed(parser, rest, ec);
    REQUIRE((!ec || ec == http::error::need_buffer));
    rest.remove_prefix(used);
    body.append(piece, sizeof piece - parser.bodySpace());
  }
  CHECK(body == "abcdefgh");
  CHECK(rest.empty());
}

/// The error a fresh parser reports for `text` (fed whole), with `header_limit` when not 0.
template <bool isRequest>
error_code parseError(std::string_view text, uint32_t header_limit = 0) {
  MessageHead head;
  HeadParser<isRequest> parser(head);
  if (header_limit) parser.header_limit(header_limit);
  error_code ec;
  feed(parser, text, ec);
  return ec;
}

TEST_CASE("HeadParser leaves Beast's validation in place") {
  CHECK(parseError<true>("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n") == http::error::bad_field);
  CHECK(parseError<true>("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") ==
        http::error::bad_content_length);
  CHECK(parseError<false>("HTTP/1.1 2000 OK\r\n\r\n") == http::error::bad_status);
  CHECK(parseError<true>("GET / HTTP/1.1\r\nX: " + std::string(100, 'a') + "\r\n\r\n", 64) ==
        http::error::header_limit);
}

TEST_CASE("iequals compares ASCII without regard to case") {
  CHECK(iequals("Content-Length", "content-length"));
  CHECK(iequals("", ""));
  CHECK_FALSE(iequals("abc", "abd"));
  CHECK_FALSE(iequals("abc", "ab"));
  CHECK_FALSE(iequals("[", "{"));  // 0x5B vs 0x7B: only letters fold
}

}  // namespace
}  // namespace sticky::proxy
