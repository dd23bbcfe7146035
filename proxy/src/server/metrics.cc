#include "server/metrics.h"

#include <initializer_list>
#include <mutex>
#include <utility>

#include "control_http/http_server.h"
#include "metrics/exposition.h"
#include "metrics/process.h"

namespace sticky::proxy {

namespace {

namespace http = boost::beast::http;
using control::HttpRequest;
using control::HttpResponse;
using Tcp = boost::asio::ip::tcp;

using metrics::Exposition;
using metrics::kContentType;

uint64_t load(const std::atomic<uint64_t>& a) {
  return a.load(std::memory_order_relaxed);
}

// Route and endpoint labels join the cluster's series: `namespace` and `stickyroute` (the
// StickyRoute), and `pod` (an endpoint is a pod) as kube-state-metrics writes them.
// One per-route family: `value(route)` gives the sample.
template <class F>
void perRoute(Exposition& x, const Router* router, std::string_view name, std::string_view type,
              std::string_view help, F value) {
  x.family(name, type, help);
  if (!router) return;
  for (const Route& route : router->routes()) {
    RouteLabels l = route.labels();
    x.sample(name, {{"namespace", l.ns}, {"stickyroute", l.name}},
             static_cast<uint64_t>(value(route)));
  }
}

// One per-endpoint family: `value(route, endpoint)` gives the sample.
template <class F>
void perEndpoint(Exposition& x, const Router* router, std::string_view name, std::string_view type,
                 std::string_view help, F value) {
  x.family(name, type, help);
  if (!router) return;
  for (const Route& route : router->routes()) {
    RouteLabels l = route.labels();
    for (const Endpoint& ep : route.endpoints()) {
      x.sample(name, {{"namespace", l.ns}, {"stickyroute", l.name}, {"pod", ep.config().name}},
               static_cast<uint64_t>(value(route, ep)));
    }
  }
}

void renderServer(Exposition& x, const Router* router, const ServerStats& s) {
  x.family("sticky_config_loaded", "gauge", "1 once a config has been loaded, else 0.");
  x.sample("sticky_config_loaded", {}, uint64_t{router ? 1u : 0u});
  x.family("sticky_config_info", "gauge",
           "Always 1, labelled with the served config's version as 16 hex digits (hash), the "
           "spelling of both binaries' logs; absent before a config is loaded.");
  if (router) {
    x.sample("sticky_config_info", {{"hash", configVersionHex(router->config().version)}},
             uint64_t{1});
  }
  x.family("sticky_config_last_applied_timestamp_seconds", "gauge",
           "When the last config was applied, seconds since the epoch; 0 before one.");
  x.sampleFloat(
      "sticky_config_last_applied_timestamp_seconds", {},
      static_cast<double>(s.config_applied_unix_ms.load(std::memory_order_relaxed)) / 1e3);
  x.family("sticky_config_applies_total", "counter", "Configs applied successfully.");
  x.sample("sticky_config_applies_total", {}, load(s.config_applies));
  x.family("sticky_config_rejects_total", "counter", "Invalid configs refused.");
  x.sample("sticky_config_rejects_total", {}, load(s.config_rejects));
  x.family("sticky_connections_accepted_total", "counter", "Client connections accepted.");
  x.sample("sticky_connections_accepted_total", {}, load(s.connections_accepted));
  x.family("sticky_connections_active", "gauge", "Client connections open now.");
  x.sample("sticky_connections_active", {}, s.connections_active.load(std::memory_order_relaxed));
  x.family("sticky_tunnels_active", "gauge", "Upgrade (WebSocket) tunnels open now.");
  x.sample("sticky_tunnels_active", {}, load(s.tunnels_active));
  x.family("sticky_bad_requests_total", "counter", "Malformed client requests answered 4xx.");
  x.sample("sticky_bad_requests_total", {}, load(s.bad_requests));
  x.family("sticky_no_route_total", "counter", "Requests that matched no route (404).");
  x.sample("sticky_no_route_total", {}, load(s.no_route));
  x.family("sticky_client_timeouts_total", "counter",
           "Client connections closed by the header read or keep-alive idle timeout.");
  x.sample("sticky_client_timeouts_total", {}, load(s.client_timeouts));
  x.family("sticky_upstream_timeouts_total", "counter",
           "Upstream connect or response timeouts (504).");
  x.sample("sticky_upstream_timeouts_total", {}, load(s.upstream_timeouts));
  x.family("sticky_upstream_errors_total", "counter", "Other upstream failures (502).");
  x.sample("sticky_upstream_errors_total", {}, load(s.upstream_errors));
  x.family("sticky_connections_rejected_total", "counter",
           "Client connections refused at accept (503, closed): reason limit = maxConnections.");
  x.sample("sticky_connections_rejected_total", {{"reason", "limit"}},
           load(s.connections_rejected_limit));
  x.family("sticky_fd_exhausted_total", "counter",
           "Sockets not opened for lack of file descriptors (EMFILE/ENFILE): where accept "
           "(accepting paused) or upstream (503).");
  x.sample("sticky_fd_exhausted_total", {{"where", "accept"}}, load(s.accept_fd_exhausted));
  x.sample("sticky_fd_exhausted_total", {{"where", "upstream"}}, load(s.upstream_fd_exhausted));
  x.family("sticky_idle_timeouts_total", "counter",
           "Transfers closed after moving no byte for their idle timeout, by reason.");
  x.sample("sticky_idle_timeouts_total", {{"reason", "client_body"}}, load(s.client_body_timeouts));
  x.sample("sticky_idle_timeouts_total", {{"reason", "client_send"}}, load(s.client_send_timeouts));
  x.sample("sticky_idle_timeouts_total", {{"reason", "upstream_read"}},
           load(s.upstream_read_timeouts));
  x.sample("sticky_idle_timeouts_total", {{"reason", "tunnel"}}, load(s.tunnel_idle_timeouts));
}

void renderRoutes(Exposition& x, const Router* router, const ServerStats& stats, TimePoint now) {
  perRoute(x, router, "sticky_route_requests_total", "counter", "Requests matched to the route.",
           [](const Route& r) { return load(r.stats().requests); });

  x.family("sticky_responses_total", "counter",
           "Responses the clients got, by route, status class and source: upstream (a pod's "
           "response relayed) or proxy (the proxy's own reply). Replies made before a route "
           "matched (malformed request, no route) have namespace=\"\" and stickyroute=\"\".");
  auto responses = [&x](RouteLabels l, const CodeClassCounts& counts, std::string_view source) {
    for (size_t c = 0; c < kCodeClasses.size(); ++c) {
      x.sample("sticky_responses_total",
               {{"namespace", l.ns},
                {"stickyroute", l.name},
                {"code_class", kCodeClasses[c]},
                {"source", source}},
               counts.get(c));
    }
  };
  responses({}, stats.unrouted_proxy_responses, "proxy");
  if (router) {
    for (const Route& route : router->routes()) {
      responses(route.labels(), route.stats().responses_from_upstream, "upstream");
      responses(route.labels(), route.stats().responses_from_proxy, "proxy");
    }
  }

  x.family("sticky_upstream_responses_total", "counter",
           "Upstream response heads received, by route, pod and status class.");
  if (router) {
    for (const Route& route : router->routes()) {
      RouteLabels l = route.labels();
      for (const Endpoint& ep : route.endpoints()) {
        for (size_t c = 0; c < kCodeClasses.size(); ++c) {
          x.sample("sticky_upstream_responses_total",
                   {{"namespace", l.ns},
                    {"stickyroute", l.name},
                    {"pod", ep.config().name},
                    {"code_class", kCodeClasses[c]}},
                   ep.stats().responses.get(c));
        }
      }
    }
  }

  perRoute(x, router, "sticky_sessions", "gauge", "Sessions in the route's stick table.",
           [](const Route& r) { return r.table().size(); });
  perEndpoint(x, router, "sticky_endpoint_sessions", "gauge", "Sessions pinned to the pod.",
              [](const Route& r, const Endpoint& e) { return r.table().sessionsOf(e.id()); });
  perRoute(x, router, "sticky_sessions_placed_total", "counter", "New sessions placed.",
           [](const Route& r) { return load(r.stats().placements); });
  perRoute(x, router, "sticky_sessions_moved_total", "counter",
           "Sessions moved (or rejected) because their pod was gone or down.",
           [](const Route& r) { return load(r.stats().moves); });
  perRoute(x, router, "sticky_sessions_expired_total", "counter",
           "Sessions dropped after being idle longer than the TTL.",
           [](const Route& r) { return r.table().counters().expirations; });
  x.family("sticky_sessions_evicted_total", "counter",
           "Sessions evicted, by reason: capacity (least recently used, to stay under "
           "maxSessions), admin (this replica's admin API), replica (another replica's admin "
           "eviction, through the shared table).");
  if (router) {
    for (const Route& route : router->routes()) {
      RouteLabels l = route.labels();
      const RouteStats& rs = route.stats();
      std::pair<std::string_view, uint64_t> reasons[] = {
          {"capacity", route.table().counters().evictions},
          {"admin", load(rs.admin_evictions)},
          {"replica", load(rs.replica_evictions)}};
      for (auto [reason, n] : reasons) {
        x.sample("sticky_sessions_evicted_total",
                 {{"namespace", l.ns}, {"stickyroute", l.name}, {"reason", reason}}, n);
      }
    }
  }
  perRoute(x, router, "sticky_rejected_missing_key_total", "counter",
           "Requests without the session header rejected (onMissingKey: Reject).",
           [](const Route& r) { return load(r.stats().rejected_missing_key); });
  perRoute(x, router, "sticky_no_endpoint_total", "counter",
           "Requests answered 503 because no endpoint was available.",
           [](const Route& r) { return load(r.stats().no_endpoint); });

  x.family("sticky_upstream_latency_seconds", "histogram",
           "Time from sending the request upstream to the response head.");
  if (router) {
    for (const Route& route : router->routes()) {
      const RouteStats& rs = route.stats();
      RouteLabels l = route.labels();
      std::array<uint64_t, kLatencyBuckets.size() + 1> per_bucket{};
      for (size_t i = 0; i < per_bucket.size(); ++i) per_bucket[i] = load(rs.latency_buckets[i]);
      x.histogram("sticky_upstream_latency_seconds", {{"namespace", l.ns}, {"stickyroute", l.name}},
                  kLatencyBuckets, per_bucket, static_cast<double>(load(rs.latency_sum_us)) / 1e6,
                  load(rs.latency_count));
    }
  }

  perEndpoint(x, router, "sticky_endpoint_up", "gauge",
              "0 while the pod is marked down after a failed upstream connect, else 1.",
              [now](const Route&, const Endpoint& e) { return e.isDown(now) ? 0u : 1u; });
  perEndpoint(x, router, "sticky_endpoint_draining", "gauge",
              "1 if the pod is Draining (no new sessions), 0 if Active.",
              [](const Route&, const Endpoint& e) { return e.active() ? 0u : 1u; });
  perEndpoint(x, router, "sticky_endpoint_requests_total", "counter",
              "Requests sent to the pod (each attempt, failovers included).",
              [](const Route&, const Endpoint& e) { return load(e.stats().requests); });
  perEndpoint(x, router, "sticky_upstream_connect_failures_total", "counter",
              "Fresh upstream connections that failed before any response byte (refused, reset or "
              "closed, or not accepted within upstreamConnectTimeout) and made the request fail "
              "over; each marks the pod down.",
              [](const Route&, const Endpoint& e) { return load(e.stats().connect_failures); });
}

void renderSharedTable(Exposition& x, const Router* router, const RedisSessionStore& store,
                       TimePoint now) {
  x.family("sticky_shared_table_connected", "gauge",
           "1 while every connection to the shared table's Redis primary (the store's and each "
           "worker's) is up, else 0.");
  x.sample("sticky_shared_table_connected", {}, uint64_t{store.connected() ? 1u : 0u});
  perRoute(x, router, "sticky_shared_table_claims_total", "counter",
           "New keys on this replica answered through Redis (placed, adopted or local).",
           [](const Route& r) { return load(r.sharedStats().claims); });
  perRoute(x, router, "sticky_shared_table_adopted_total", "counter",
           "New keys on this replica that another replica had already placed.",
           [](const Route& r) { return load(r.sharedStats().adopted); });
  perRoute(x, router, "sticky_shared_table_unavailable_total", "counter",
           "New keys placed locally because Redis did not answer in time (reconciled later).",
           [](const Route& r) { return load(r.sharedStats().unavailable); });
  perRoute(x, router, "sticky_shared_table_peer_replicas", "gauge",
           "Other replicas whose session counts for the route are fresh (at most 3 s old), "
           "added to this replica's own by LeastSessions placement; 0 for other policies.",
           [now](const Route& r) { return r.peerReplicas(now); });
  perRoute(x, router, "sticky_shared_table_unsynced_entries", "gauge",
           "Entries of this replica's table that Redis has not confirmed since they were placed "
           "while it was unavailable (or since its events may have been missed); the next "
           "refresh rounds write them back.",
           [](const Route& r) { return r.table().counters().unsynced; });
  const RedisStoreStats& t = store.stats();
  std::pair<const char*, std::pair<const char*, const std::atomic<uint64_t>*>> table[] = {
      {"sticky_shared_table_refreshed_total",
       {"Idle timers extended in Redis (batched, at most once per key per margin).", &t.refreshed}},
      {"sticky_shared_table_reasserted_total",
       {"Local entries written back to Redis (after a reconnect, or found missing).",
        &t.reasserted}},
      {"sticky_shared_table_conflicts_total",
       {"Local entries that Redis held elsewhere; Redis's answer was adopted.", &t.conflicts}},
      {"sticky_shared_table_moves_total", {"Session moves sent to Redis.", &t.moves}},
      {"sticky_shared_table_move_conflicts_total",
       {"Moves that found another replica's move first (adopted).", &t.move_conflicts}},
      {"sticky_shared_table_events_sent_total",
       {"Move and eviction events published to other replicas.", &t.events_sent}},
      {"sticky_shared_table_events_applied_total",
       {"Other replicas' events applied to this replica's table.", &t.events_applied}},
  };
  for (auto& [name, what] : table) {
    x.family(name, "counter", what.first);
    x.sample(name, {}, load(*what.second));
  }
  x.family("sticky_shared_table_refresh_batch_size", "summary",
           "Keys per refresh batch: each round sends one pipelined batch per route with keys due "
           "(idle timers to extend, unsynced entries to write back).");
  x.sample("sticky_shared_table_refresh_batch_size_sum", {}, load(t.refresh_batch_keys));
  x.sample("sticky_shared_table_refresh_batch_size_count", {}, load(t.refresh_batches));
  const redis::RedisStats& c = store.clientStats();
  std::pair<const char*, std::pair<const char*, const std::atomic<uint64_t>*>> client[] = {
      {"sticky_redis_commands_total", {"Commands sent to Redis.", &c.commands}},
      {"sticky_redis_errors_total",
       {"Commands that failed (timeout, connection lost, protocol).", &c.errors}},
      {"sticky_redis_timeouts_total",
       {"Commands not answered within the command timeout.", &c.timeouts}},
      {"sticky_redis_rejected_total",
       {"Commands failed at once because Redis was not connected.", &c.rejected}},
      {"sticky_redis_connects_total", {"Successful connections to the primary.", &c.connects}},
      {"sticky_redis_connect_failures_total",
       {"Failed connection attempts (unreachable, auth, not primary).", &c.connect_failures}},
  };
  for (auto& [name, what] : client) {
    x.family(name, "counter", what.first);
    x.sample(name, {}, load(*what.second));
  }
  x.family("sticky_redis_command_latency_seconds", "summary",
           "Time from sending a command to its reply, for replies received in time.");
  x.sampleFloat("sticky_redis_command_latency_seconds_sum", {},
                static_cast<double>(load(c.latency_sum_us)) / 1e6);
  x.sample("sticky_redis_command_latency_seconds_count", {}, load(c.latency_count));
}

void renderAccessLog(Exposition& x, const ServerStats& s) {
  x.family("sticky_access_log_dropped_total", "counter",
           "Access log lines lost: the buffers were full (a destination slower than the "
           "traffic) or a write failed. 0 while the access log is off.");
  x.sample("sticky_access_log_dropped_total", {}, load(s.access_log_dropped));
}

}  // namespace

std::string renderMetrics(const Router* router, const ServerStats& stats, TimePoint now,
                          const RedisSessionStore* store) {
  Exposition x;
  renderServer(x, router, stats);
  renderRoutes(x, router, stats, now);
  renderAccessLog(x, stats);
  if (store) renderSharedTable(x, router, *store, now);
  metrics::renderBuildInfo(x);
  metrics::renderProcessMetrics(x);
  return x.take();
}

std::string renderMetrics(const Router* router, const ServerStats& stats) {
  return renderMetrics(router, stats, SteadyClock::now());
}

struct MetricsServer::Impl {
  uint16_t port = 0;
  const RouterHolder* routers = nullptr;
  const ServerStats* stats = nullptr;
  const RedisSessionStore* store = nullptr;
  std::shared_ptr<control::HttpServer<Tcp>> http;
  std::atomic<bool> stopped{false};
  std::mutex handling;  // held by a scrape in progress; stop() waits for it
};

namespace {

HttpResponse textResponse(http::status status, std::string body) {
  return control::makeResponse(status, std::move(body), "text/plain; charset=utf-8");
}

HttpResponse errorText(http::status status, std::string_view message) {
  return textResponse(status, std::string(message) + "\n");
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(boost::asio::io_context& io,
                                                            const Tcp::endpoint& listen,
                                                            const RouterHolder& routers,
                                                            const ServerStats& stats,
                                                            const RedisSessionStore* store) {
  boost::asio::any_io_executor strand = boost::asio::make_strand(io);
  std::string where = listen.address().to_string() + ":" + std::to_string(listen.port());
  auto listening = control::listenTcp(strand, listen);
  if (!listening)
    return fail("cannot listen for metrics on " + where + ": " + listening.error().message);
  control::HttpServer<Tcp>::Acceptor acceptor = std::move(listening).value();
  boost::system::error_code ec;
  Tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) return fail("cannot listen for metrics on " + where + ": " + ec.message());

  auto impl = std::make_shared<Impl>();
  impl->port = bound.port();
  control::HttpOptions options;
  options.body_limit = 64 * 1024;
  impl->routers = &routers;
  impl->stats = &stats;
  impl->store = store;
  std::weak_ptr<Impl> weak = impl;
  impl->http = std::make_shared<control::HttpServer<Tcp>>(
      strand, std::move(acceptor),
      [weak](const HttpRequest& req) {
        std::string_view target = req.target();
        std::string_view path = target.substr(0, target.find('?'));
        if (path != "/metrics" && path != "/healthz" && path != "/readyz") {
          return errorText(http::status::not_found,
                           "no such path " + std::string(path) +
                               "; this port serves /metrics, /healthz and /readyz");
        }
        if (req.method() != http::verb::get) {
          HttpResponse res =
              errorText(http::status::method_not_allowed, "use GET " + std::string(path));
          res.set(http::field::allow, "GET");
          return res;
        }
        auto self = weak.lock();
        if (!self) return errorText(http::status::service_unavailable, "shutting down");
        std::lock_guard lock(self->handling);
        if (self->stopped) return errorText(http::status::service_unavailable, "shutting down");
        if (path == "/healthz") return textResponse(http::status::ok, "ok\n");
        if (path == "/readyz") {
          if (self->stats->shutting_down.load(std::memory_order_relaxed)) {
            return errorText(http::status::service_unavailable,
                             "shutting down; still serving while endpoints are updated");
          }
          if (!self->routers->loaded()) {
            return errorText(http::status::service_unavailable, "no config loaded yet");
          }
          if (self->store && !self->store->startupSettled()) {
            return errorText(http::status::service_unavailable,
                             "connecting to Redis for the shared table");
          }
          return textResponse(http::status::ok, "ready\n");
        }
        auto router = self->routers->current();
        return control::makeResponse(
            http::status::ok,
            renderMetrics(router.get(), *self->stats, SteadyClock::now(), self->store),
            kContentType);
      },
      &errorText, options);
  impl->http->start();
  return std::make_unique<MetricsServer>(std::move(impl));
}

MetricsServer::MetricsServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  stop();
}

uint16_t MetricsServer::port() const {
  return impl_->port;
}

void MetricsServer::stop() {
  if (!impl_->stopped.exchange(true)) {
    impl_->http->stop();
    std::lock_guard lock(impl_->handling);
  }
}

}  // namespace sticky::proxy
