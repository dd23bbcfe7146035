#pragma once
// The operator's HTTP port (`--metrics-listen`): Prometheus metrics and the kubelet's probes.
//
//   GET /metrics  the text exposition format, rendered from the parts' counters at scrape time
//   GET /healthz  200 "ok" while the process runs its loops; 500 with the reason when one looks
//                 hung (the reconcile loop has not made progress for a while): the kubelet's
//                 liveness probe restarts the container
//   GET /readyz   200 "ready" once the informer caches have synced (with leader election, whether
//                 or not this replica leads); 503 with the reason before
//
// Served by the shared Beast server (lib/control_http) on a thread of its own; cpprestsdk stays
// the Kubernetes API client only.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "common/result.h"
#include "metrics/exposition.h"

namespace sticky::op {

struct MetricsSources {
  /// Writes every family of the scrape.
  std::function<void(metrics::Exposition&)> render;
  /// Why the process is not healthy (liveness), or nullopt.
  std::function<std::optional<std::string>()> unhealthy;
  /// Why it is not ready yet (readiness), or nullopt.
  std::function<std::optional<std::string>()> not_ready;
};

class MetricsServer {
 public:
  /// Listens on `listen` (port 0 picks one) and serves on a thread of its own until stop().
  /// Fails (one sentence) when the address cannot be bound.
  static Result<std::unique_ptr<MetricsServer>> start(const boost::asio::ip::tcp::endpoint& listen,
                                                      MetricsSources sources);
  ~MetricsServer();  // stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  uint16_t port() const;
  /// Closes the listener and open connections and joins the thread. Idempotent.
  void stop();

  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sticky::op
