#pragma once
// The proxy process minus its flags: workers on the listen address, the RouterHolder they read,
// the admin socket and metrics port (on a control thread of their own, with the periodic stick
// table sweep), config apply, and drain.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/result.h"
#include "config/proxy_config.h"
#include "control_http/listen.h"
#include "http/access_log.h"
#include "http/server_stats.h"
#include "routing/router.h"

namespace sticky::proxy {

class AdminServer;
class MetricsServer;
class RedisSessionStore;
class Worker;

struct ServerOptions {
  std::string listen = "0.0.0.0:8080";  // used when the config has no `listen`
  std::string admin_socket;             // empty: no admin socket
  std::string metrics_listen;           // empty: no metrics port
  unsigned workers = 0;                 // 0: one per core
  SharedTableConfig shared_table;       // flags; when set, wins over the config file's
  AccessLogOptions access_log;          // off unless a destination is given
};

/// "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0", "localhost:8080" -> an endpoint (lib's, shared
/// with the operator).
using control::parseListenAddress;

class Server {
 public:
  /// Binds the listen address (the config's, else options.listen), applies `config` if given,
  /// starts the admin socket and metrics port if asked for, and starts the workers.
  static Result<std::unique_ptr<Server>> start(ServerOptions options,
                                               std::optional<ProxyConfig> config);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Validates and swaps in `config`. Refuses a `listen` that differs from the running one (the
  /// socket cannot move at runtime). On error the current config keeps serving. Thread-safe.
  Result<Ok, ConfigErrors> apply(ProxyConfig config);

  /// The bound address (with the real port when the configured one was 0).
  boost::asio::ip::tcp::endpoint listenEndpoint() const { return bound_; }
  /// The listen address as configured ("host:port").
  const std::string& listenAddress() const { return listen_; }
  std::optional<uint16_t> metricsPort() const;
  size_t workerCount() const { return workers_.size(); }
  RouterHolder& routers() { return routers_; }
  /// The shared table's store, or nullptr when the table is local only.
  RedisSessionStore* sessionStore() const { return store_.get(); }
  ServerStats& stats() { return stats_; }

  /// Graceful shutdown: stop accepting, let requests in flight finish (up to the config's
  /// drain_timeout), then close everything. Returns false if connections had to be cut.
  bool drain();
  /// Closes everything now. Idempotent.
  void stop();

 private:
  Server() = default;
  void scheduleSweep();

  ServerOptions options_;
  std::string listen_;
  boost::asio::ip::tcp::endpoint listen_endpoint_;  // as requested (port may be 0)
  boost::asio::ip::tcp::endpoint bound_;
  RouterHolder routers_;
  SharedTableConfig shared_table_;  // as started; a pushed config may not change it
  std::unique_ptr<RedisSessionStore> store_;
  ServerStats stats_;
  std::mutex apply_mu_;
  std::unique_ptr<AccessLogSink> access_log_;  // outlives the workers, whose writers feed it
  std::vector<std::unique_ptr<Worker>> workers_;
  boost::asio::io_context control_io_{1};  // admin socket, metrics, sweep
  std::unique_ptr<boost::asio::steady_timer> sweep_timer_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<MetricsServer> metrics_;
  std::thread control_thread_;
  std::once_flag stopped_;
};

}  // namespace sticky::proxy
