#include "http/response_relay.h"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "http/read_progress.h"
#include "proxy/http/loopback.h"

// See proxy/src/http/client_connection.cc.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace sticky::proxy {
namespace {

using namespace testing;
using error_code = boost::system::error_code;

/// A backend (upstream.far) and a client (client.far) with the relay between them.
struct Relay {
  asio::io_context io;
  SocketPair upstream = socketPair(io);
  SocketPair client = socketPair(io);
  boost::beast::flat_buffer upstream_buffer;
  MessageHead head;
  ResponseHeadParser parser{head};
  ByteBuffer head_out;
  std::unique_ptr<char[]> piece = std::make_unique<char[]>(kRelayPieceSize);
  Deadline deadline;
  Collector received{client.far};

  /// The backend sends `response`; its head is parsed, then the body relayed (`chunked`: framed
  /// as chunks for the client) after "HEAD\r\n" standing in for the rewritten head. Runs until
  /// the relay ends and returns how.
  RelayEnd run(const std::string& response, bool chunked, bool close_after = false) {
    writeLater(upstream.far, response, [this, close_after] {
      error_code ignored;
      if (close_after) upstream.far.shutdown(tcp::socket::shutdown_send, ignored);
    });
    std::optional<RelayEnd> end;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          error_code ec;
          if (!parseBuffered(parser, upstream_buffer, ec))
            co_await readUntilProgress(upstream.near, upstream_buffer, parser, onError(ec));
          CHECK(!ec);
          head_out.append("HEAD\r\n");
          BodyRelay relay{upstream.near,
                          upstream_buffer,
                          parser,
                          client.near,
                          head_out,
                          piece.get(),
                          chunked,
                          deadline,
                          std::chrono::seconds(5),
                          std::chrono::seconds(5)};
          end = co_await relayBody(relay);
          error_code ignored;
          client.near.shutdown(tcp::socket::shutdown_send, ignored);
        },
        asio::detached);
    REQUIRE(runUntil(io, [&] { return end && received.eof; }));
    return *end;
  }
};

/// The payload of a chunked body ("5\r\nhello\r\n0\r\n\r\n" -> "hello"); nullopt if the framing
/// is wrong or the last chunk is missing.
std::optional<std::string> unchunk(std::string_view s) {
  std::string out;
  while (true) {
    size_t eol = s.find("\r\n");
    if (eol == std::string_view::npos) return std::nullopt;
    size_t n = std::stoul(std::string(s.substr(0, eol)), nullptr, 16);
    s.remove_prefix(eol + 2);
    if (n == 0) return s == "\r\n" ? std::optional<std::string>(out) : std::nullopt;
    if (s.size() < n + 2 || s.substr(n, 2) != "\r\n") return std::nullopt;
    out.append(s.substr(0, n));
    s.remove_prefix(n + 2);
  }
}

std::string body(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

TEST_CASE("a Content-Length body is relayed as it is, over several pieces") {
  Relay r;
  std::string payload = body(2 * kRelayPieceSize + 123);
  auto end = r.run(
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(payload.size()) + "\r\n\r\n" + payload,
      false);
  CHECK(end.kind == RelayEnd::Done);
  CHECK(end.head_sent);
  CHECK(r.parser.is_done());
  CHECK(r.received.received == "HEAD\r\n" + payload);
}

TEST_CASE("a chunked body is re-framed for the client") {
  Relay r;
  auto end = r.run(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
      true);
  CHECK(end.kind == RelayEnd::Done);
  REQUIRE(r.received.received.starts_with("HEAD\r\n"));
  CHECK(unchunk(std::string_view(r.received.received).substr(6)) == "hello world");
}

TEST_CASE("a body delimited by the close ends with it, chunked or as it is") {
  std::string payload = body(kRelayPieceSize + 7);
  SUBCASE("to an HTTP/1.1 client: chunked") {
    Relay r;
    auto end = r.run("HTTP/1.1 200 OK\r\n\r\n" + payload, true, true);
    CHECK(end.kind == RelayEnd::Done);
    REQUIRE(r.received.received.starts_with("HEAD\r\n"));
    CHECK(unchunk(std::string_view(r.received.received).substr(6)) == payload);
  }
  SUBCASE("to an HTTP/1.0 client: the bytes") {
    Relay r;
    auto end = r.run("HTTP/1.1 200 OK\r\n\r\n" + payload, false, true);
    CHECK(end.kind == RelayEnd::Done);
    CHECK(r.received.received == "HEAD\r\n" + payload);
  }
}

TEST_CASE("an upstream that closes mid-body fails the relay after the head went out") {
  Relay r;
  auto end = r.run("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", false, true);
  CHECK(end.kind == RelayEnd::UpstreamFailed);
  CHECK(end.head_sent);
  CHECK_FALSE(r.deadline.expired());
  CHECK(r.received.received == "HEAD\r\n0123456789");
}

}  // namespace
}  // namespace sticky::proxy
