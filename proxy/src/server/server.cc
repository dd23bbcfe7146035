#include "server/server.h"

#include <algorithm>
#include <charconv>
#include <chrono>

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "config/model.h"
#include "routing/redis_store.h"
#include "server/admin_server.h"
#include "server/metrics.h"
#include "server/worker.h"

namespace sticky::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr auto kSweepPeriod = std::chrono::seconds(1);
constexpr auto kDrainPoll = std::chrono::milliseconds(10);

std::string describe(const ProxyConfig& config) {
  size_t endpoints = 0;
  for (auto& r : config.routes) endpoints += r.endpoints.size();
  return "version " + configVersionHex(config.version) + " (" +
         std::to_string(config.routes.size()) + " routes, " + std::to_string(endpoints) +
         " endpoints)";
}

// A config was swapped in: sticky_config_applies_total and
// sticky_config_last_applied_timestamp_seconds.
void countApplied(ServerStats& stats) {
  stats.config_applies.fetch_add(1, std::memory_order_relaxed);
  auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  stats.config_applied_unix_ms.store(
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count(),
      std::memory_order_relaxed);
}

}  // namespace

Result<std::unique_ptr<Server>> Server::start(ServerOptions options,
                                              std::optional<ProxyConfig> config) {
  std::unique_ptr<Server> s(new Server());
  s->options_ = options;
  s->listen_ = config && !config->listen.empty() ? config->listen : options.listen;
  auto listen = parseListenAddress(s->listen_);
  if (!listen) return fail(listen.error().message);
  s->listen_endpoint_ = *listen;

  s->shared_table_ =
      options.shared_table.enabled() || !config ? options.shared_table : config->shared_table;
  if (const auto& redis = s->shared_table_.redis) {
    auto store = RedisSessionStore::start(*redis, s->routers_);
    if (!store) return fail(store.error().message);
    s->store_ = std::move(*store);
    s->routers_.setStore(s->store_.get());
    std::string where = redis->address.empty() ? "sentinels " + redis->sentinels.front() + ".. (" +
                                                     redis->master_name + ")"
                                               : redis->address;
    if (redis->tls) where += redis->insecure_skip_verify ? " over TLS (NOT verified)" : " over TLS";
    logInfo("shared table on Redis " + where + " (replica " + s->store_->replicaId() + ")");
  }

  std::string summary;
  if (config) {
    config->shared_table = s->shared_table_;
    summary = describe(*config);
    auto applied = s->routers_.apply(std::move(*config), SteadyClock::now());
    if (!applied) return fail("the config is invalid: " + sticky::describe(applied.error()));
    countApplied(s->stats_);
  }

  if (options.access_log.enabled()) {
    auto sink = AccessLogSink::open(options.access_log, s->stats_.access_log_dropped);
    if (!sink) return fail("--access-log: " + sink.error().message);
    s->access_log_ = std::move(*sink);
  }

  unsigned count = options.workers;
  if (count == 0) count = std::max(1u, std::thread::hardware_concurrency());
  tcp::endpoint bind_to = *listen;
  for (unsigned i = 0; i < count; ++i) {
    auto worker = std::make_unique<Worker>(i, s->routers_, s->stats_);
    if (s->access_log_) worker->enableAccessLog(*s->access_log_);
    auto listening = worker->listen(bind_to);
    if (!listening) return fail(listening.error().message);
    if (i == 0) {
      bind_to = worker->localEndpoint();  // port 0: every worker shares the port picked here
      s->bound_ = bind_to;
    }
    s->workers_.push_back(std::move(worker));
  }

  if (!options.metrics_listen.empty()) {
    auto at = parseListenAddress(options.metrics_listen);
    if (!at) return fail("--metrics-listen: " + at.error().message);
    auto metrics =
        MetricsServer::start(s->control_io_, *at, s->routers_, s->stats_, s->store_.get());
    if (!metrics) return fail("cannot start the metrics server: " + metrics.error().message);
    s->metrics_ = std::move(*metrics);
  }
  if (!options.admin_socket.empty()) {
    AdminHooks hooks;
    hooks.routers = &s->routers_;
    hooks.stats = &s->stats_;
    hooks.redis = s->store_.get();
    hooks.apply_config = [server = s.get()](ProxyConfig c) { return server->apply(std::move(c)); };
    auto admin = AdminServer::start(s->control_io_, options.admin_socket, std::move(hooks));
    if (!admin) return fail("cannot start the admin socket: " + admin.error().message);
    s->admin_ = std::move(*admin);
  }
  s->sweep_timer_ = std::make_unique<asio::steady_timer>(s->control_io_);
  s->scheduleSweep();
  s->control_thread_ = std::thread([server = s.get()] { server->control_io_.run(); });
  // Nothing fails from here on: every attached worker runs until stop() detaches it.
  for (size_t i = 0; s->store_ && i < s->workers_.size(); ++i) {
    s->store_->attachWorker(s->workers_[i]->io(), i);
  }
  for (auto& w : s->workers_) w->start();
  if (!summary.empty()) logInfo("config applied: " + summary);
  return s;
}

Server::~Server() {
  stop();
}

void Server::scheduleSweep() {
  sweep_timer_->expires_after(kSweepPeriod);
  sweep_timer_->async_wait([this](error_code ec) {
    if (ec) return;
    if (auto router = routers_.current()) {
      size_t dropped = router->sweep(SteadyClock::now());
      if (dropped) logDebug("sweep dropped " + std::to_string(dropped) + " expired sessions");
    }
    scheduleSweep();
  });
}

std::optional<uint16_t> Server::metricsPort() const {
  if (!metrics_) return std::nullopt;
  return metrics_->port();
}

Result<Ok, ConfigErrors> Server::apply(ProxyConfig config) {
  std::lock_guard lock(apply_mu_);
  std::string wanted = config.listen.empty() ? options_.listen : config.listen;
  if (wanted != listen_) {
    auto at = parseListenAddress(wanted);
    if (!at || *at != listen_endpoint_) {
      stats_.config_rejects.fetch_add(1, std::memory_order_relaxed);
      ConfigErrors errors{{"listen", "listen cannot change at runtime (running on " + listen_ +
                                         ", the config asks for " + wanted +
                                         "); restart the proxy to move it"}};
      logWarn("config rejected: " + sticky::describe(errors));
      return unexpected(std::move(errors));
    }
  }
  if (config.shared_table.enabled() && config.shared_table != shared_table_) {
    stats_.config_rejects.fetch_add(1, std::memory_order_relaxed);
    ConfigErrors errors{{"sharedTable",
                         "sharedTable cannot change at runtime; restart the proxy "
                         "with the new Redis settings"}};
    logWarn("config rejected: " + sticky::describe(errors));
    return unexpected(std::move(errors));
  }
  config.shared_table = shared_table_;
  std::string summary = describe(config);
  auto applied = routers_.apply(std::move(config), SteadyClock::now());
  if (applied) {
    countApplied(stats_);
    logInfo("config applied: " + summary);
  } else {
    stats_.config_rejects.fetch_add(1, std::memory_order_relaxed);
    logWarn("config rejected: " + sticky::describe(applied.error()));
  }
  return applied;
}

bool Server::drain() {
  auto router = routers_.current();
  Duration timeout = router ? router->config().limits.drain_timeout : Limits{}.drain_timeout;
  for (auto& w : workers_) w->stopAccepting();
  auto deadline = SteadyClock::now() + timeout;
  bool clean = true;
  while (true) {
    size_t open = 0;
    for (auto& w : workers_) open += w->connections();
    if (open == 0) break;
    if (SteadyClock::now() >= deadline) {
      logWarn("drain timeout reached with " + std::to_string(open) +
              " connections still open; closing them");
      clean = false;
      break;
    }
    std::this_thread::sleep_for(kDrainPoll);
  }
  stop();
  return clean;
}

void Server::stop() {
  std::call_once(stopped_, [this] {
    if (store_) store_->detachWorkers();  // while the workers run: on their threads
    for (auto& w : workers_) w->stop();
    for (auto& w : workers_) w->join();
    for (auto& w : workers_) w->flushAccessLog();  // their threads are done: safe from here
    if (access_log_) access_log_->stop();          // writes every line handed over
    if (store_) store_->stop();  // after the workers: no claim is asked of a stopped store
    if (admin_) admin_->stop();
    if (metrics_) metrics_->stop();
    control_io_.stop();
    if (control_thread_.joinable()) control_thread_.join();
  });
}

}  // namespace sticky::proxy
