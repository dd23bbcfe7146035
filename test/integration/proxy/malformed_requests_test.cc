// Malformed client input through the real sticky-proxy: each case gets a 4xx and a closed
// connection, while a well-behaved keep-alive connection next to it keeps working.
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "integration/proxy/proxy_harness.h"

namespace sticky::test {
namespace {

struct Case {
  std::string name;
  std::string bytes;
  int status;  // expected exact status
};

std::string manyHeaders(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
  return s;
}

std::vector<Case> malformedRequests() {
  const std::string get = "GET / HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\n";
  const std::string post = "POST /upload HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\n";
  return {
      {"garbage request line", "HELLO\r\n\r\n", 400},
      {"HTTP/0.9 request line", "GET /\r\n\r\n", 400},
      {"HTTP/2.0 on an HTTP/1 connection", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400},
      {"version without digits", "GET / HTTP/x.y\r\nHost: x\r\n\r\n", 400},
      {"invalid method characters", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"space in the target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"bare LF line endings", "GET / HTTP/1.1\nHost: x\n\n", 400},
      {"header without a colon", get + "NoColonHere\r\n\r\n", 400},
      {"space before the colon", get + "X-Bad : v\r\n\r\n", 400},
      {"NUL in a header value", get + std::string("X-Nul: a\0b\r\n\r\n", 14), 400},
      {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\nclient-id: 1\r\n\r\n", 400},
      {"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      // Found by smuggling_test.cc: nginx refuses these (RFC 9112 3.2), the proxy forwarded them.
      {"Host with a space", "GET / HTTP/1.1\r\nHost: a, b\r\nclient-id: 1\r\n\r\n", 400},
      {"empty Host", "GET / HTTP/1.1\r\nHost:\r\nclient-id: 1\r\n\r\n", 400},
      {"absolute-form target with userinfo",
       "GET http://user@x/ HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\n\r\n", 400},
      {"Content-Length and Transfer-Encoding",
       post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"Transfer-Encoding then Content-Length",
       post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400},
      {"conflicting Content-Lengths", post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
       400},
      {"non-numeric Content-Length", post + "Content-Length: abc\r\n\r\n", 400},
      {"negative Content-Length", post + "Content-Length: -1\r\n\r\n", 400},
      {"overflowing Content-Length", post + "Content-Length: 99999999999999999999999\r\n\r\n", 400},
      {"Transfer-Encoding not ending in chunked", post + "Transfer-Encoding: gzip\r\n\r\nxx", 400},
      {"Transfer-Encoding on HTTP/1.0",
       "POST / HTTP/1.0\r\nclient-id: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"invalid chunk size", post + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
       400},
      {"overflowing chunk size",
       post + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk longer than its size",
       post + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400},
      {"request head over maxHeaderBytes",
       get + "X-Big: " + std::string(40 * 1024, 'a') + "\r\n\r\n", 431},
      {"more header fields than maxHeaderCount", get + manyHeaders(150) + "\r\n", 431},
      {"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405},
  };
}

TEST_CASE("malformed requests get a 4xx and a close - a keep-alive neighbour keeps working") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2");
  ProxyProc proxy(dir, configOf(1, {stickyRoute("shop/chat", {b1.endpoint()})}),
                  {"--metrics-listen", "127.0.0.1:0"});
  uint16_t metrics_port = proxy.metricsPort();
  auto neighbour = proxy.client();
  REQUIRE(neighbour.get("/", key("n")).status == 200);

  auto cases = malformedRequests();
  REQUIRE(cases.size() >= 20);
  for (auto& c : cases) {
    INFO("case: " << c.name);
    auto r = rawExchange("127.0.0.1", proxy.port(), c.bytes, 10s);
    CHECK(r.error.empty());
    CHECK(r.status == c.status);
    CHECK(r.closed);
    CHECK(r.data.find("Connection: close") != std::string::npos);
    auto ok = neighbour.get("/", key("n"));
    CHECK(ok.status == 200);
  }
  CHECK(neighbour.connectionsOpened() == 1);

  // An unsupported transfer coding is not the client's syntax error: 501, and still a close.
  auto r = rawExchange("127.0.0.1", proxy.port(),
                       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                       "0\r\n\r\n");
  CHECK(r.status == 501);
  CHECK(r.closed);

  // Every malformed request was counted.
  HttpClient m("127.0.0.1", metrics_port);
  auto scrape = m.get("/metrics");
  REQUIRE(scrape.status == 200);
  std::istringstream in(scrape.body);
  std::string line;
  double bad = -1;
  while (std::getline(in, line))
    if (line.rfind("sticky_bad_requests_total ", 0) == 0) bad = std::stod(line.substr(26));
  CHECK(bad >= static_cast<double>(cases.size()));
  CHECK(proxy.process().running());
}

/// The JSON the test backend answered on a raw exchange (null if none).
nlohmann::json echoedJson(const RawResult& r) {
  auto body = r.data.find("\r\n\r\n");
  if (body == std::string::npos) return {};
  return nlohmann::json::parse(r.data.substr(body + 4), nullptr, false);
}

// Found by smuggling_test.cc: an absolute-form target was routed by its authority but forwarded
// with the client's Host, which a backend then took as the host (RFC 9112 3.2.2: replace it);
// an HTTP/1.0 request without Host went out as HTTP/1.1 without one, which nginx refuses.
TEST_CASE("the upstream gets the Host the request was routed by") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2");
  ProxyProc proxy(dir, configOf(1, {stickyRoute("shop/chat", {b1.endpoint()})}));

  auto absolute = echoedJson(rawExchange(
      "127.0.0.1", proxy.port(),
      "GET http://a.example:81/x HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n"));
  REQUIRE(absolute.is_object());
  CHECK(absolute["headers"]["host"] == "a.example:81");
  CHECK(absolute["headers"]["x-forwarded-host"] == "a.example:81");

  auto http10 = echoedJson(rawExchange("127.0.0.1", proxy.port(), "GET /x HTTP/1.0\r\n\r\n"));
  REQUIRE(http10.is_object());
  CHECK(http10["headers"]["host"] == "127.0.0.2:" + std::to_string(b1.port()));

  auto origin =
      echoedJson(rawExchange("127.0.0.1", proxy.port(),
                             "GET /x HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n"));
  REQUIRE(origin.is_object());
  CHECK(origin["headers"]["host"] == "b.example");
}

}  // namespace
}  // namespace sticky::test
