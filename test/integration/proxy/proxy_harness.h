#pragma once
// Integration-test harness: the real sticky-proxy binary with a static config file (reloaded by
// SIGHUP), and real sticky-test-backend processes on 127.0.0.x loopback addresses.

#include <doctest/doctest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "config/proxy_config.h"
#include "support/http_client.h"
#include "support/paths.h"
#include "support/process.h"
#include "support/proxy_process.h"

namespace sticky::test {

using namespace std::chrono_literals;

/// A sticky-test-backend process. Port 0 picks a free port; restart() reuses the same one.
class BackendProc {
 public:
  BackendProc(const TempDir& dir, std::string name, std::string address, uint16_t port = 0)
      : log_path_(dir.file("backend-" + name + ".log")),
        name_(std::move(name)),
        address_(std::move(address)),
        port_(port) {
    start();
  }

  const std::string& name() const { return name_; }
  const std::string& address() const { return address_; }
  uint16_t port() const { return port_; }
  EndpointConfig endpoint(EndpointState state = EndpointState::Active) const {
    return {name_, address_, port_, state};
  }

  /// SIGKILL: the process dies without closing anything gracefully.
  void kill() {
    process_->signal(SIGKILL);
    CHECK(process_->wait(10s) != -1);
  }
  /// Starts again on the same address and port.
  void restart() {
    process_.reset();
    start();
  }
  Process& process() { return *process_; }

 private:
  void start() {
    std::ofstream(log_path_, std::ios::trunc).close();
    process_ = std::make_unique<Process>(
        std::vector<std::string>{sticky::test::testBackendBinary(), "--listen",
                                 address_ + ":" + std::to_string(port_), "--name", name_},
        log_path_);
    std::optional<uint16_t> port;
    bool up = waitFor([&] { return (port = listeningPort(process_->log())).has_value(); }, 10s);
    REQUIRE_MESSAGE(up, "backend " << name_ << " did not start; log:\n" << process_->log());
    port_ = *port;
  }

  std::string log_path_;
  std::string name_;
  std::string address_;
  uint16_t port_;
  std::unique_ptr<Process> process_;
};

/// A route on header `client-id` with the given endpoints (any host, path /).
inline RouteConfig stickyRoute(std::string name, std::vector<EndpointConfig> endpoints,
                               Placement placement = Placement::LeastSessions) {
  RouteConfig r;
  r.name = std::move(name);
  r.header = "client-id";
  r.placement = placement;
  r.endpoints = std::move(endpoints);
  return r;
}

inline ProxyConfig configOf(uint64_t version, std::vector<RouteConfig> routes) {
  ProxyConfig c;
  c.version = version;
  c.listen = "127.0.0.1:0";
  c.routes = std::move(routes);
  return c;
}

/// The real sticky-proxy with `--config <file>` (JSON written from a ProxyConfig).
class ProxyProc {
 public:
  /// `max_open_files` > 0: the proxy's RLIMIT_NOFILE (ProxyOptions::max_open_files).
  ProxyProc(const TempDir& dir, const ProxyConfig& config, std::vector<std::string> extra_args = {},
            int max_open_files = 0)
      : config_path_(dir.file("proxy-" + std::to_string(++counter()) + ".json")),
        log_path_(config_path_ + ".log") {
    writeFile(config_path_, toJsonString(config, 2));
    ProxyOptions options;
    options.log_path = log_path_;
    options.config_file = config_path_;
    options.workers = 2;
    options.extra_args = std::move(extra_args);
    options.max_open_files = max_open_files;
    options.start_timeout = 10s;
    process_ = std::make_unique<ProxyProcess>(std::move(options));
    port_ = process_->port();
  }

  uint16_t port() const { return port_; }
  /// The metrics port, for a proxy started with --metrics-listen (port 0 picks a free one).
  uint16_t metricsPort() const { return process_->metricsPort(); }
  int pid() const { return process_->pid(); }
  Process& process() { return process_->process(); }
  std::string log() const { return process_->log(); }
  const std::string& configPath() const { return config_path_; }

  HttpClient client(std::chrono::milliseconds timeout = kDefaultTimeout) const {
    return HttpClient("127.0.0.1", port_, timeout);
  }

  /// Rewrites the config file, sends SIGHUP and waits until the log reports it applied.
  void reload(const ProxyConfig& config) {
    writeFile(config_path_, toJsonString(config, 2));
    process_->process().signal(SIGHUP);
    std::string applied = "config applied: version " + configVersionHex(config.version) + " ";
    bool ok = waitFor([&] { return log().find(applied) != std::string::npos; }, 10s);
    REQUIRE_MESSAGE(ok, "config version " << config.version << " was not applied; log:\n" << log());
  }

  /// Rewrites the config file with raw text and sends SIGHUP; waits for `log_line` in the log.
  void reloadRaw(const std::string& text, const std::string& log_line) {
    writeFile(config_path_, text);
    process_->process().signal(SIGHUP);
    bool seen = waitFor([&] { return log().find(log_line) != std::string::npos; }, 10s);
    REQUIRE_MESSAGE(seen, "no '" << log_line << "' after SIGHUP; log:\n" << log());
  }

  /// A field of /proc/PID/status in kB (VmRSS, VmHWM), or -1.
  long statusKb(const std::string& field) const {
    std::ifstream in("/proc/" + std::to_string(process_->pid()) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
    }
    return -1;
  }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }

  std::string config_path_;
  std::string log_path_;
  std::unique_ptr<ProxyProcess> process_;
  uint16_t port_ = 0;
};

/// A hand-written upstream for responses the test backend never sends (bad framing, interim
/// answers, closes at chosen moments). For each request head it calls `script(head, connection,
/// request)` (both counted from 0) and writes the bytes returned (and `later` 100 ms after them);
/// `close` ends the connection after them. Requests must not carry bodies.
class ScriptedUpstream {
 public:
  struct Reply {
    Reply(std::string bytes_, bool close_ = false, std::string later_ = {})
        : bytes(std::move(bytes_)), close(close_), later(std::move(later_)) {}
    std::string bytes;
    bool close = false;
    std::string later;  // written 100 ms after `bytes`, in a write of its own
  };
  using Script = std::function<Reply(const std::string& head, int connection, int request)>;

  ScriptedUpstream(const std::string& address, Script script)
      : acceptor_(io_, {boost::asio::ip::make_address(address), 0}), script_(std::move(script)) {
    thread_ = std::thread([this] { run(); });
  }
  ~ScriptedUpstream() {
    stop_ = true;
    boost::system::error_code ignored;
    boost::asio::ip::tcp::socket poke(io_);  // wakes the blocking accept
    poke.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_; }
  int requests() const { return requests_; }
  /// Replies' `later` bytes written so far.
  int latersWritten() const { return laters_written_; }

 private:
  void run() {
    for (int c = 0; !stop_; ++c) {
      boost::asio::ip::tcp::socket s(io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) return;
      ++connections_;
      boost::asio::streambuf buf;
      for (int r = 0;; ++r) {
        size_t n = boost::asio::read_until(s, buf, "\r\n\r\n", ec);
        if (ec) break;
        std::string head(boost::asio::buffers_begin(buf.data()),
                         boost::asio::buffers_begin(buf.data()) + static_cast<long>(n));
        buf.consume(n);
        ++requests_;
        Reply reply = script_(head, c, r);
        if (!reply.bytes.empty()) boost::asio::write(s, boost::asio::buffer(reply.bytes), ec);
        if (!ec && !reply.later.empty()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          boost::asio::write(s, boost::asio::buffer(reply.later), ec);
          if (!ec) ++laters_written_;
        }
        if (ec || reply.close) break;
      }
    }
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  Script script_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> laters_written_{0};
};

/// Which backend answered (the test backend's JSON "backend" field; "" if none).
inline std::string backendOf(const HttpResponse& res) {
  auto j = res.json();
  if (!j.is_object() || !j.contains("backend")) return {};
  return j["backend"].get<std::string>();
}

/// A request header the backend received, as echoed in its JSON ("" if absent).
inline std::string echoedHeader(const HttpResponse& res, const std::string& lower_name) {
  auto j = res.json();
  if (!j.is_object() || !j.contains("headers") || !j["headers"].contains(lower_name)) return {};
  return j["headers"][lower_name].get<std::string>();
}

inline bool echoedHas(const HttpResponse& res, const std::string& lower_name) {
  auto j = res.json();
  return j.is_object() && j.contains("headers") && j["headers"].contains(lower_name);
}

inline Headers key(const std::string& value) {
  return {{"client-id", value}};
}

}  // namespace sticky::test
