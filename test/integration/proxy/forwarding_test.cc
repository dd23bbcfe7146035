// The forwarding path of the real sticky-proxy: headers, framing, streaming with bounded memory,
// WebSocket tunnels, HTTP/1.0, 100-continue, pipelining, timeouts.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "integration/proxy/proxy_harness.h"
#include "support/backend.h"

namespace sticky::test {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// Under AddressSanitizer freed memory is held in a quarantine (256 MiB by default) before reuse,
// so the proxy's RSS says nothing about its own footprint there; those runs check the bytes only.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsMeaningful = false;
#else
constexpr bool kRssIsMeaningful = true;
#endif

struct OneBackend {
  TempDir dir;
  BackendProc backend{dir, "b1", "127.0.0.2"};
  ProxyProc proxy;

  explicit OneBackend(const std::function<void(ProxyConfig&)>& tweak = {})
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
          std::this_thread::sleep_for(std::chrono::milliseconds(15));  // a slow reader
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
  if (kRssIsMeaningful) {
    CHECK(rss_peak - rss_before < 64 * 1024);
    CHECK(hwm - rss_before < 64 * 1024);
  } else {
    MESSAGE("AddressSanitizer build: RSS not checked (freed memory sits in its quarantine)");
  }
}

TEST_CASE("a 64 MiB upload streams through without buffering") {
  OneBackend f;
  auto client = f.proxy.client();
  REQUIRE(client.get("/warm-up", key("1")).status == 200);
  long rss_before = f.proxy.statusKb("VmRSS");
  auto res = client.upload("/upload", key("1"), 64 * kMiB, true);
  REQUIRE_MESSAGE(res.status == 200, res.error);
  CHECK(res.json()["bodyBytes"] == 64 * kMiB);
  long hwm = f.proxy.statusKb("VmHWM");
  INFO("RSS before " << rss_before << " kB, HWM " << hwm << " kB");
  if (kRssIsMeaningful)
    CHECK(hwm - rss_before < 32 * 1024);
  else
    MESSAGE("AddressSanitizer build: RSS not checked (freed memory sits in its quarantine)");
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
    CHECK(client.get("/status/599", key("1")).status == 599);  // unknown to Beast, passed as is
    CHECK(client.get("/after", key("1")).status == 200);
    CHECK(client.connectionsOpened() == 1);
  }
}

TEST_CASE("an upstream slower than upstreamResponseTimeout gets 504") {
  OneBackend f(
      [](ProxyConfig& c) { c.limits.upstream_response_timeout = std::chrono::milliseconds(300); });
  auto client = f.proxy.client();
  auto res = client.get("/slow?ms=5000", key("1"));
  CHECK(res.status == 504);
  CHECK(res.body.find("b1") != std::string::npos);
  CHECK(client.get("/fast", key("1")).status == 200);  // the client connection survives
}

TEST_CASE("client timeouts: a stalled head gets 408 and close, an idle connection is closed") {
  OneBackend f([](ProxyConfig& c) {
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

TEST_CASE("upstream framing is re-framed for the client - interim answers pass - garbage is 502") {
  TempDir dir;
  ScriptedUpstream upstream("127.0.0.4", [](const std::string& head, int, int) {
    using Reply = ScriptedUpstream::Reply;
    auto is = [&](const char* path) {
      return head.find(std::string(" ") + path + " ") != std::string::npos;
    };
    if (is("/eof"))
      return Reply{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", true};
    if (is("/early"))
      return Reply{
          "HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"};
    if (is("/both"))
      return Reply{
          "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
          "0\r\n\r\n",
          true};
    return Reply{"NOT HTTP AT ALL\r\n\r\n", true};
  });
  ProxyProc proxy(dir,
                  configOf(1, {stickyRoute("shop/raw", {{"raw", "127.0.0.4", upstream.port()}})}));

  auto client = proxy.client();
  auto res = client.get("/eof", key("1"));
  CHECK(res.status == 200);
  CHECK(res.body == "until close");
  CHECK(res.header("transfer-encoding") == "chunked");  // so the client connection can stay
  CHECK(client.get("/garbage", key("1")).status == 502);
  CHECK(client.get("/both", key("1")).status == 502);
  CHECK(client.get("/eof", key("1")).status == 200);
  CHECK(client.connectionsOpened() == 1);

  auto old = rawExchange("127.0.0.1", proxy.port(), "GET /eof HTTP/1.0\r\nclient-id: 1\r\n\r\n");
  CHECK(old.status == 200);
  CHECK(old.closed);  // an HTTP/1.0 client reads until the close
  CHECK(old.data.find("\r\n\r\nuntil close") != std::string::npos);

  RawConnection early("127.0.0.1", proxy.port());
  early.send("GET /early HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\n\r\n");
  auto r = early.readUntil("\r\n\r\nok", 5s);
  auto hints = r.data.find("HTTP/1.1 103 Early Hints");
  auto final_head = r.data.find("HTTP/1.1 200 OK");
  CHECK_MESSAGE(hints == 0, r.data);  // the status as a number, whatever Beast knows
  CHECK(final_head != std::string::npos);
  CHECK(r.data.find("Link: </style.css>") < final_head);
}

/// A listener on 127.0.0.4 whose accept queue is full: the kernel drops further SYNs, so
/// connects to it hang, as to a pod whose node is gone.
struct StuckListener {
  int listener = -1;
  std::vector<int> fillers;
  uint16_t port = 0;

  StuckListener() {
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(0x7f000004);  // 127.0.0.4
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 0) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    for (int i = 0; i < 4; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      fillers.push_back(fd);
    }
  }
  ~StuckListener() {
    for (int fd : fillers) ::close(fd);
    ::close(listener);
  }
  StuckListener(const StuckListener&) = delete;
  StuckListener& operator=(const StuckListener&) = delete;
};

TEST_CASE(
    "a backend that sends a body after HEAD or 204 - the stray bytes never answer another "
    "request") {
  // Response queue poisoning: bytes a backend sends after a head that ends its response must not
  // be read as the next request's response when the pooled connection is reused.
  TempDir dir;
  const std::string poison = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned";
  ScriptedUpstream upstream("127.0.0.4", [&](const std::string& head, int, int) {
    using Reply = ScriptedUpstream::Reply;
    if (head.rfind("HEAD ", 0) == 0)
      return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n", false, poison};
    if (head.find(" /nothing ") != std::string::npos)
      return Reply{"HTTP/1.1 204 No Content\r\n\r\n", false, poison};
    return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"};
  });
  // One worker: one pool, and the scripted upstream serves one connection at a time.
  ProxyProc proxy(dir,
                  configOf(1, {stickyRoute("shop/raw", {{"raw", "127.0.0.4", upstream.port()}})}),
                  {"--workers", "1"});
  auto client = proxy.client();
  int strays = 0;
  for (std::string first : {"HEAD /x", "GET /nothing"}) {
    CAPTURE(first);
    RawConnection c("127.0.0.1", proxy.port());
    c.send(first + " HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\n\r\n");
    auto head = c.readUntil("\r\n\r\n", 5s);
    CHECK(head.data.rfind("HTTP/1.1 2", 0) == 0);
    ++strays;  // the stray bytes are in the pooled connection's socket before the next request
    REQUIRE(waitFor([&] { return upstream.latersWritten() == strays; }, 5s));
    auto res = client.get("/y", key("1"));
    CHECK(res.status == 200);
    CHECK(res.body == "ok");
  }
  CHECK(upstream.connections() == 3);  // each connection with stray bytes was closed, not reused
}

TEST_CASE("an endpoint that does not accept within upstreamConnectTimeout gets 504") {
  StuckListener stuck;
  TempDir dir;
  auto config = configOf(1, {stickyRoute("shop/chat", {{"stuck", "127.0.0.4", stuck.port}})});
  config.limits.upstream_connect_timeout = std::chrono::milliseconds(300);
  ProxyProc proxy(dir, config);
  auto res = proxy.client().get("/", key("1"));
  CHECK(res.status == 504);
  CHECK(res.body.find("stuck did not accept a connection within 300ms") != std::string::npos);
}

TEST_CASE("a connect timeout marks the endpoint down - its sessions fail over with moved headers") {
  StuckListener stuck;
  TempDir dir;
  BackendProc b2(dir, "b2", "127.0.0.3");
  auto config =
      configOf(1, {stickyRoute("shop/chat", {{"stuck", "127.0.0.4", stuck.port}, b2.endpoint()})});
  config.limits.upstream_connect_timeout = std::chrono::milliseconds(300);
  ProxyProc proxy(dir, config);
  auto client = proxy.client();
  int moved = 0;
  for (int i = 0; i < 20; ++i) {
    auto res = client.get("/", key(std::to_string(i)));
    REQUIRE_MESSAGE(res.status == 200, res.status << " " << res.body);
    CHECK(backendOf(res) == "b2");
    if (!res.has("x-sticky-session-moved")) continue;
    // Placed on the stuck endpoint, which timed out (or was already marked down): both the
    // client and the new pod are told.
    CHECK(res.header("x-sticky-session-moved") == "stuck");
    CHECK(echoedHeader(res, "x-sticky-moved-from") == "stuck");
    ++moved;
  }
  // Least-sessions placement puts one of the first two keys on the empty stuck endpoint; once it
  // is marked down no new session goes there.
  CHECK(moved == 1);
}

}  // namespace
}  // namespace sticky::test
