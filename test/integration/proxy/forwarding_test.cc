// The forwarding path of the real sticky-proxy: headers, framing, streaming with bounded memory,
// WebSocket tunnels, HTTP/1.0, 100-continue, pipelining, timeouts.
#include <doctest/doctest.h>

#include <thread>

#include "fakes/backend.h"
#include "integration/proxy/proxy_harness.h"

namespace sticky::test {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

struct OneBackend {
  TempDir dir;
  BackendProc backend{dir, "b1", "127.0.0.2"};
  ProxyProc proxy;

  explicit OneBackend(const std::function<void(proxy::ProxyConfig&)>& tweak = {})
      : proxy(dir, [&] {
          auto c = configOf(1, {stickyRoute("shop/chat", {backend.endpoint()})});
          if (tweak) tweak(c);
          return c;
        }()) {}
};

std::string patternHash(uint64_t bytes) {
  uint64_t h = fnv1a64({});
  std::string piece;
  for (uint64_t off = 0; off < bytes; off += piece.size()) {
    piece.clear();
    for (uint64_t i = off; i < bytes && piece.size() < 65536; ++i) piece.push_back(downloadByte(i));
    h = fnv1a64(piece, h);
  }
  return hex64(h);
}

TEST_CASE("hop-by-hop headers are dropped both ways and X-Forwarded-* are set") {
  OneBackend f;
  auto client = f.proxy.client();
  auto res = client.get(
      "/echo?set-header=Keep-Alive:timeout%3D5&set-header=Proxy-Thing:1&set-header=X-End:kept",
      {{"client-id", "1"},
       {"Connection", "keep-alive, X-Secret"},
       {"X-Secret", "hop"},
       {"Keep-Alive", "timeout=5"},
       {"Proxy-Authorization", "Basic x"},
       {"TE", "trailers"},
       {"X-Forwarded-For", "10.1.2.3"},
       {"X-Sticky-Moved-From", "spoofed"},
       {"X-Custom", "end-to-end"}});
  REQUIRE(res.status == 200);
  CHECK_FALSE(echoedHas(res, "connection"));
  CHECK_FALSE(echoedHas(res, "x-secret"));
  CHECK_FALSE(echoedHas(res, "keep-alive"));
  CHECK_FALSE(echoedHas(res, "proxy-authorization"));
  CHECK_FALSE(echoedHas(res, "te"));
  CHECK_FALSE(echoedHas(res, "x-sticky-moved-from"));  // only the proxy sets it
  CHECK(echoedHeader(res, "x-custom") == "end-to-end");
  CHECK(echoedHeader(res, "client-id") == "1");
  CHECK(echoedHeader(res, "x-forwarded-for") == "10.1.2.3, 127.0.0.1");
  CHECK(echoedHeader(res, "x-forwarded-proto") == "http");
  CHECK(echoedHeader(res, "x-forwarded-host") == "127.0.0.1:" + std::to_string(f.proxy.port()));
  CHECK_FALSE(res.has("keep-alive"));
  CHECK_FALSE(res.has("proxy-thing"));
  CHECK(res.header("x-end") == "kept");
  CHECK(res.header("x-backend") == "b1");
}

TEST_CASE("chunked and content-length bodies pass through intact in both directions") {
  OneBackend f;
  auto client = f.proxy.client();
  for (bool chunked : {false, true}) {
    INFO("chunked upload: " << chunked);
    auto res = client.upload("/upload", key("1"), 3 * kMiB + 17, chunked);
    REQUIRE_MESSAGE(res.status == 200, res.error);
    auto j = res.json();
    CHECK(j["bodyBytes"] == 3 * kMiB + 17);
    CHECK(j["bodyHash"] == patternHash(3 * kMiB + 17));
    CHECK(echoedHas(res, chunked ? "transfer-encoding" : "content-length"));
  }
  for (bool chunked : {false, true}) {
    INFO("chunked download: " << chunked);
    std::string target =
        "/download?bytes=" + std::to_string(2 * kMiB + 5) + (chunked ? "&chunked=1" : "");
    auto res = client.get(target, key("1"));
    REQUIRE_MESSAGE(res.status == 200, res.error);
    REQUIRE(res.body.size() == 2 * kMiB + 5);
    bool same = true;
    for (size_t i = 0; i < res.body.size() && same; ++i) same = res.body[i] == downloadByte(i);
    CHECK(same);
    CHECK(res.header("transfer-encoding") == (chunked ? "chunked" : ""));
  }
  auto small = client.request(
      "POST", "/upload", {{"client-id", "1"}, {"Transfer-Encoding", "chunked"}}, "hello chunks");
  REQUIRE(small.status == 200);
  CHECK(small.json()["body"] == "hello chunks");
  CHECK(client.connectionsOpened() == 1);
}

TEST_CASE("a 100 MiB download read slowly keeps the proxy's memory bounded") {
  OneBackend f;
  auto client = f.proxy.client();
  REQUIRE(client.get("/warm-up", key("1")).status == 200);
  long rss_before = f.proxy.statusKb("VmRSS");
  REQUIRE(rss_before > 0);

  uint64_t received = 0;
  bool pattern_ok = true;
  long rss_peak = rss_before;
  int pieces = 0;
  auto res = client.stream(
      "GET", "/download?bytes=" + std::to_string(100 * kMiB), key("1"), {},
      [&](std::string_view piece) {
        for (size_t i = 0; i < piece.size(); i += 4093)
          pattern_ok = pattern_ok && piece[i] == downloadByte(received + i);
        received += piece.size();
        if (++pieces % 64 == 0) {
          rss_peak = std::max(rss_peak, f.proxy.statusKb("VmRSS"));
          std::this_thread::sleep_for(std::chrono::milliseconds(40));  // a slow reader
        }
        return true;
      },
      16 * 1024);
  REQUIRE_MESSAGE(res.status == 200, res.error);
  CHECK(received == 100 * kMiB);
  CHECK(pattern_ok);
  long hwm = f.proxy.statusKb("VmHWM");
  INFO("RSS before " << rss_before << " kB, peak sampled " << rss_peak << " kB, HWM " << hwm
                     << " kB");
  CHECK(rss_peak - rss_before < 64 * 1024);
  CHECK(hwm - rss_before < 64 * 1024);
}

TEST_CASE("a 100 MiB upload streams through without buffering") {
  OneBackend f;
  auto client = f.proxy.client();
  REQUIRE(client.get("/warm-up", key("1")).status == 200);
  long rss_before = f.proxy.statusKb("VmRSS");
  auto res = client.upload("/upload", key("1"), 100 * kMiB, true);
  REQUIRE_MESSAGE(res.status == 200, res.error);
  CHECK(res.json()["bodyBytes"] == 100 * kMiB);
  long hwm = f.proxy.statusKb("VmHWM");
  INFO("RSS before " << rss_before << " kB, HWM " << hwm << " kB");
  CHECK(hwm - rss_before < 64 * 1024);
}

TEST_CASE("WebSocket upgrades are tunnelled to the session's endpoint and echo both ways") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3");
  ProxyProc proxy(dir, configOf(1, {stickyRoute("shop/chat", {b1.endpoint(), b2.endpoint()})}));
  auto client = proxy.client();
  auto pinned = backendOf(client.get("/", key("ws-user")));
  REQUIRE_FALSE(pinned.empty());

  WebSocketClient ws("127.0.0.1", proxy.port(), "/ws", key("ws-user"));
  REQUIRE_MESSAGE(ws.open(), ws.error() << " status " << ws.handshake().status);
  CHECK(ws.handshake().status == 101);
  CHECK(ws.handshake().header("x-backend") == pinned);
  for (int i = 0; i < 20; ++i) {
    std::string m = "message " + std::to_string(i);
    REQUIRE(ws.send(m));
    CHECK(ws.receive() == m);
  }
  std::string big(300 * 1024, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
  REQUIRE(ws.send(big, /*binary=*/true));
  CHECK(ws.receive() == big);
  ws.close();
  // The proxy still serves plain requests afterwards.
  CHECK(client.get("/", key("ws-user")).status == 200);
}

TEST_CASE("HTTP/1.0 clients, Expect: 100-continue and pipelined requests") {
  OneBackend f;
  SUBCASE("HTTP/1.0 without keep-alive gets its answer and a close") {
    auto r = rawExchange("127.0.0.1", f.proxy.port(), "GET /old HTTP/1.0\r\nclient-id: 1\r\n\r\n");
    CHECK(r.status == 200);
    CHECK(r.closed);
    CHECK(r.data.find("\"path\":\"/old\"") != std::string::npos);
  }
  SUBCASE("HTTP/1.0 with keep-alive keeps the connection") {
    RawConnection c("127.0.0.1", f.proxy.port());
    std::string req = "GET /a HTTP/1.0\r\nConnection: keep-alive\r\nclient-id: 1\r\n\r\n";
    c.send(req);
    auto r = c.readUntil("\"path\":\"/a\"", 5s);
    CHECK(r.status == 200);
    CHECK_FALSE(r.closed);
    CHECK(r.data.find("Connection: keep-alive") != std::string::npos);
  }
  SUBCASE("Expect: 100-continue is answered by the proxy and the body forwarded") {
    RawConnection c("127.0.0.1", f.proxy.port());
    c.send(
        "POST /upload HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\nContent-Length: 5\r\n"
        "Expect: 100-continue\r\n\r\n");
    auto r = c.readUntil("\r\n\r\n", 5s);
    CHECK(r.data.rfind("HTTP/1.1 100 Continue", 0) == 0);
    c.send("hello");
    r = c.readUntil("\"bodyBytes\":5", 5s);
    CHECK(r.data.find("HTTP/1.1 200") != std::string::npos);
    CHECK(r.data.find("\"expect\"") == std::string::npos);
  }
  SUBCASE("pipelined requests are answered in order on one connection") {
    RawConnection c("127.0.0.1", f.proxy.port());
    c.send(
        "GET /one HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\n\r\n"
        "GET /two HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\n\r\n"
        "GET /three HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\nConnection: close\r\n\r\n");
    auto r = c.readUntilClose(5s);
    CHECK(r.closed);
    auto one = r.data.find("\"path\":\"/one\"");
    auto two = r.data.find("\"path\":\"/two\"");
    auto three = r.data.find("\"path\":\"/three\"");
    REQUIRE(one != std::string::npos);
    REQUIRE(two != std::string::npos);
    REQUIRE(three != std::string::npos);
    CHECK(one < two);
    CHECK(two < three);
  }
  SUBCASE("HEAD and 204 responses carry no body and keep the connection usable") {
    auto client = f.proxy.client();
    auto head = client.request("HEAD", "/download?bytes=1000", key("1"));
    CHECK(head.status == 200);
    CHECK(head.header("content-length") == "1000");
    CHECK(head.body.empty());
    CHECK(client.get("/status/204", key("1")).status == 204);
    CHECK(client.get("/status/418", key("1")).status == 418);
    CHECK(client.get("/after", key("1")).status == 200);
    CHECK(client.connectionsOpened() == 1);
  }
}

TEST_CASE("an upstream slower than upstreamResponseTimeout gets 504") {
  OneBackend f([](proxy::ProxyConfig& c) {
    c.limits.upstream_response_timeout = std::chrono::milliseconds(300);
  });
  auto client = f.proxy.client();
  auto res = client.get("/slow?ms=5000", key("1"));
  CHECK(res.status == 504);
  CHECK(res.body.find("b1") != std::string::npos);
  CHECK(client.get("/fast", key("1")).status == 200);  // the client connection survives
}

TEST_CASE("client timeouts: a stalled head gets 408 and close, an idle connection is closed") {
  OneBackend f([](proxy::ProxyConfig& c) {
    c.limits.client_header_timeout = std::chrono::milliseconds(300);
    c.limits.keep_alive_idle_timeout = std::chrono::milliseconds(300);
  });
  {
    RawConnection c("127.0.0.1", f.proxy.port());
    c.send("GET / HTTP/1.1\r\nHost: x\r\nclient-");  // and nothing more
    auto r = c.readUntilClose(5s);
    CHECK(r.status == 408);
    CHECK(r.closed);
  }
  {
    RawConnection c("127.0.0.1", f.proxy.port());
    c.send("GET / HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\n\r\n");
    auto r = c.readUntilClose(5s);  // answered, then closed after the idle timeout
    CHECK(r.status == 200);
    CHECK(r.closed);
  }
}

}  // namespace
}  // namespace sticky::test
