// Overload and hostile clients through the real sticky-proxy (docs/security.md): each limit with
// a small value, what the client gets, the counter, and that the proxy keeps serving the others.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/proxy/proxy_harness.h"

namespace sticky::test {
namespace {

/// The value of the sample `series` (name plus labels exactly as exposed), or -1.
double metric(uint16_t metrics_port, const std::string& series) {
  HttpClient m("127.0.0.1", metrics_port, 2s);
  auto scrape = m.get("/metrics");
  if (scrape.status != 200) return -1;
  std::istringstream in(scrape.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.rfind(series, 0) == 0 && line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

bool metricReaches(uint16_t metrics_port, const std::string& series, double value) {
  return waitFor([&] { return metric(metrics_port, series) >= value; }, 10s);
}

/// A TCP connection to 127.0.0.1:port as a bare descriptor (one fd; no I/O context), closed on
/// destruction. The kernel completes it even when the proxy does not accept it.
class BareConnection {
 public:
  explicit BareConnection(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~BareConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  BareConnection(const BareConnection&) = delete;
  BareConnection& operator=(const BareConnection&) = delete;
  bool connected() const { return fd_ >= 0; }

 private:
  int fd_;
};

/// user + system CPU time of process `pid` so far, in clock ticks (/proc/PID/stat fields 14, 15).
long cpuTicks(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));  // after "pid (comm) "
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) {
      stime = std::stol(field);
      break;
    }
  }
  return utime + stime;
}

struct LimitedProxy {
  TempDir dir;
  BackendProc backend{dir, "b1", "127.0.0.2"};
  ProxyProc proxy;

  explicit LimitedProxy(const std::function<void(Limits&)>& tweak, int max_open_files = 0)
      : proxy(
            dir,
            [&] {
              auto c = configOf(1, {stickyRoute("shop/chat", {backend.endpoint()})});
              tweak(c.limits);
              return c;
            }(),
            {"--metrics-listen", "127.0.0.1:0"}, max_open_files) {}

  uint16_t metrics() const { return proxy.metricsPort(); }
};

TEST_CASE("maxConnections: one more connection gets 503 and a close - a freed slot serves again") {
  LimitedProxy f([](Limits& l) {
    l.max_connections = 4;
    l.client_header_timeout = 30s;
  });
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 4; ++i)
    held.push_back(std::make_unique<RawConnection>("127.0.0.1", f.proxy.port()));
  REQUIRE(metricReaches(f.metrics(), "sticky_connections_active", 4));

  auto refused = rawExchange("127.0.0.1", f.proxy.port(), "", 5s);
  CHECK(refused.status == 503);
  CHECK(refused.closed);
  CHECK(refused.data.find("limit of 4 client connections") != std::string::npos);
  CHECK(metric(f.metrics(), "sticky_connections_rejected_total{reason=\"limit\"}") == 1);

  held.pop_back();  // one slot frees up
  REQUIRE(waitFor([&] { return metric(f.metrics(), "sticky_connections_active") == 3; }, 10s));
  auto client = f.proxy.client();
  CHECK(client.get("/", key("1")).status == 200);
  CHECK(f.proxy.process().running());
}

TEST_CASE("clientBodyTimeout: a request body that stalls gets 408 and a close") {
  LimitedProxy f([](Limits& l) { l.client_body_timeout = 300ms; });
  RawConnection c("127.0.0.1", f.proxy.port());
  c.send("POST /upload HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\nContent-Length: 100\r\n\r\nabc");
  auto r = c.readUntilClose(5s);
  CHECK(r.status == 408);
  CHECK(r.closed);
  CHECK(r.data.find("the request body stalled for 300ms") != std::string::npos);
  CHECK(metricReaches(f.metrics(), "sticky_idle_timeouts_total{reason=\"client_body\"}", 1));
  CHECK(f.proxy.client().get("/", key("1")).status == 200);
}

TEST_CASE("clientSendTimeout: a client that stops reading is cut - one reading steadily is not") {
  LimitedProxy f([](Limits& l) { l.client_send_timeout = 1s; });
  {
    // 24 MiB read in 64 KiB pieces with a pause after each: about twice the timeout in all,
    // which counts from the last time the client took bytes. (The proxy sees the client take
    // bytes when its socket buffer, megabytes on loopback, is half empty again: a reader must
    // empty that faster than the timeout.)
    auto client = f.proxy.client();
    uint64_t received = 0;
    auto res = client.stream("GET", "/download?bytes=" + std::to_string(24 << 20), key("1"), {},
                             [&](std::string_view piece) {
                               received += piece.size();
                               std::this_thread::sleep_for(5ms);
                               return true;
                             });
    CHECK(res.status == 200);
    CHECK(received == (24u << 20));
  }
  CHECK(metric(f.metrics(), "sticky_idle_timeouts_total{reason=\"client_send\"}") == 0);

  // Asks for 256 MiB and never reads: once the socket buffers are full, the proxy gives up.
  RawConnection stuck("127.0.0.1", f.proxy.port());
  stuck.send("GET /download?bytes=268435456 HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\n\r\n");
  CHECK(metricReaches(f.metrics(), "sticky_idle_timeouts_total{reason=\"client_send\"}", 1));
  CHECK(f.proxy.client().get("/", key("1")).status == 200);
}

TEST_CASE("upstreamReadTimeout: an endpoint that stops mid-body gets the response cut") {
  TempDir dir;
  // Promises 100 bytes, sends 5, then nothing (the connection stays open).
  ScriptedUpstream upstream("127.0.0.4", [](const std::string&, int, int) {
    return ScriptedUpstream::Reply{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello"};
  });
  auto config = configOf(1, {stickyRoute("shop/chat", {{"u", "127.0.0.4", upstream.port()}})});
  config.limits.upstream_read_timeout = 300ms;
  config.limits.upstream_response_timeout = 10s;
  ProxyProc proxy(dir, config, {"--metrics-listen", "127.0.0.1:0"});
  auto r = rawExchange("127.0.0.1", proxy.port(),
                       "GET /trickle HTTP/1.1\r\nHost: x\r\nclient-id: 1\r\n\r\n", 5s);
  CHECK(r.status == 200);  // the head went out: closing is all that is left to say
  CHECK(r.closed);
  CHECK(r.data.find("\r\n\r\nhello") != std::string::npos);
  CHECK(r.data.size() < r.data.find("\r\n\r\n") + 4 + 100);
  CHECK(metricReaches(proxy.metricsPort(), "sticky_idle_timeouts_total{reason=\"upstream_read\"}",
                      1));
}

TEST_CASE("tunnelIdleTimeout: a busy tunnel stays open - an idle one is closed on both sides") {
  LimitedProxy f([](Limits& l) { l.tunnel_idle_timeout = 500ms; });
  WebSocketClient ws("127.0.0.1", f.proxy.port(), "/ws", key("ws"), 5s);
  REQUIRE_MESSAGE(ws.open(), ws.error());
  // 1.6 s of traffic, a message every 200 ms: each byte re-arms the idle limit.
  for (int i = 0; i < 8; ++i) {
    std::string m = "message " + std::to_string(i);
    REQUIRE(ws.send(m));
    CHECK(ws.receive() == m);
    std::this_thread::sleep_for(200ms);
  }
  CHECK(metric(f.metrics(), "sticky_idle_timeouts_total{reason=\"tunnel\"}") == 0);
  // Then silence: the proxy closes the tunnel; the client sees the end.
  CHECK_FALSE(ws.receive().has_value());
  CHECK(metricReaches(f.metrics(), "sticky_idle_timeouts_total{reason=\"tunnel\"}", 1));
  CHECK(metricReaches(f.metrics(), "sticky_tunnels_active", 0));
}

TEST_CASE("file descriptors run out: accepting pauses without spinning - open connections work") {
  constexpr int kOpenFiles = 64;
  LimitedProxy f([](Limits& l) { l.client_header_timeout = 60s; }, kOpenFiles);
  uint16_t metrics_port = f.metrics();
  // A keep-alive client with a pooled upstream connection behind it, from before the shortage.
  auto client = f.proxy.client();
  REQUIRE(client.get("/", key("1")).status == 200);

  // More connections than the proxy has descriptors: it accepts until accept() fails with
  // EMFILE; the rest wait in the kernel's backlog.
  std::vector<std::unique_ptr<BareConnection>> flood;
  for (int i = 0; i < 2 * kOpenFiles; ++i) {
    flood.push_back(std::make_unique<BareConnection>(f.proxy.port()));
    REQUIRE(flood.back()->connected());
  }
  REQUIRE_MESSAGE(
      waitFor([&] { return f.proxy.log().find("pausing accepts") != std::string::npos; }, 10s),
      f.proxy.log());

  // No busy loop: over one second the proxy uses a small part of one CPU (a spinning accept
  // loop uses all of one per worker).
  long before = cpuTicks(f.proxy.pid());
  std::this_thread::sleep_for(1s);
  long used = cpuTicks(f.proxy.pid()) - before;
  long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  INFO("CPU over 1 s: " << used << " of " << ticks_per_second << " ticks");
  CHECK(used * 4 < ticks_per_second);

  // The connection open before the shortage is still served (its upstream connection is pooled).
  CHECK(client.get("/", key("1")).status == 200);

  // Descriptors come back: the proxy accepts again and serves a new client.
  flood.clear();
  bool served = waitFor(
      [&] {
        HttpClient fresh("127.0.0.1", f.proxy.port(), 2s);
        return fresh.get("/", key("2")).status == 200;
      },
      10s, 100ms);
  CHECK_MESSAGE(served, f.proxy.log());
  CHECK(f.proxy.log().find("accepting again") != std::string::npos);
  CHECK(metric(metrics_port, "sticky_fd_exhausted_total{where=\"accept\"}") >= 1);
}

}  // namespace
}  // namespace sticky::test
