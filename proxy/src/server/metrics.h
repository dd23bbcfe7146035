#pragma once
// Prometheus metrics: `GET /metrics` on a TCP port, in the text exposition format (0.0.4),
// written by the shared renderer (lib/metrics) from the proxy's atomics at scrape time, with
// `sticky_build_info` and the process_* families.
// The same port answers the kubelet's probes, which cannot reach the admin Unix socket:
// `GET /healthz` (200 while the process serves) and `GET /readyz` (200 once a config is loaded,
// else 503).

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/result.h"
#include "http/server_stats.h"
#include "metrics/exposition.h"
#include "routing/redis_store.h"
#include "routing/router.h"

namespace sticky::proxy {

class MetricsServer {
 public:
  /// Listens on `listen` (port 0 picks one) and serves on `io`. `routers` and `stats` must outlive
  /// the server.
  static Result<std::unique_ptr<MetricsServer>> start(boost::asio::io_context& io,
                                                      const boost::asio::ip::tcp::endpoint& listen,
                                                      const RouterHolder& routers,
                                                      const ServerStats& stats,
                                                      const RedisSessionStore* store = nullptr);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  uint16_t port() const;  // the bound port
  /// Stops accepting and closes open connections. Safe to call from any thread, more than once.
  void stop();

  struct Impl;
  explicit MetricsServer(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;
};

/// The whole scrape in Prometheus text format. `router` may be null (no config loaded yet).
std::string renderMetrics(const Router* router, const ServerStats& stats);
/// The same at an explicit time (which endpoints count as down), with the shared table's
/// families when `store` is given.
std::string renderMetrics(const Router* router, const ServerStats& stats, TimePoint now,
                          const RedisSessionStore* store = nullptr);

/// Escapes a label value for the text format: backslash, double quote and newline (the shared
/// renderer's).
using metrics::escapeLabelValue;

}  // namespace sticky::proxy
