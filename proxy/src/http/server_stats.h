#pragma once
// Server-wide counters (not tied to a route), read by the admin server and metrics.

#include <atomic>
#include <cstdint>

#include "routing/code_class_counts.h"

namespace sticky::proxy {

struct ServerStats {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<int64_t> connections_active{0};
  std::atomic<uint64_t> bad_requests{0};           // malformed client input answered 4xx + close
  std::atomic<uint64_t> no_route{0};               // 404: no route matched
  std::atomic<uint64_t> client_timeouts{0};        // header read / keep-alive idle timeouts
  std::atomic<uint64_t> upstream_timeouts{0};      // connect or response timeout (504)
  std::atomic<uint64_t> upstream_errors{0};        // other upstream failures (502)
  std::atomic<uint64_t> tunnels_active{0};         // Upgrade tunnels in progress (gauge)
  std::atomic<uint64_t> config_applies{0};         // successful config swaps
  std::atomic<int64_t> config_applied_unix_ms{0};  // wall clock of the last swap, 0 before one
  std::atomic<uint64_t> config_rejects{0};         // invalid configs refused
  // Overload and slow peers (docs/security.md).
  std::atomic<uint64_t> connections_rejected_limit{0};  // over maxConnections: 503 and close
  std::atomic<uint64_t> accept_fd_exhausted{0};         // accept: EMFILE/ENFILE, accepting paused
  std::atomic<uint64_t> upstream_fd_exhausted{0};       // upstream socket: EMFILE/ENFILE, 503
  std::atomic<uint64_t> client_body_timeouts{0};        // clientBodyTimeout: 408 and close
  std::atomic<uint64_t> client_send_timeouts{0};        // clientSendTimeout: closed
  std::atomic<uint64_t> upstream_read_timeouts{0};      // upstreamReadTimeout: cut (504 if no head)
  std::atomic<uint64_t> tunnel_idle_timeouts{0};        // tunnelIdleTimeout: both sides closed
  // The proxy's own replies made before a route matched (bad request, no route, no config,
  // connection limit): sticky_responses_total{namespace="",stickyroute="",source="proxy"}.
  CodeClassCounts unrouted_proxy_responses;
  std::atomic<uint64_t> access_log_dropped{0};  // lines lost (http/access_log.h)
  std::atomic<bool> shutting_down{false};       // SIGTERM seen: /readyz fails, still serving
};

}  // namespace sticky::proxy
