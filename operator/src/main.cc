// sticky-operator: watches StickyRoutes and Pods, pushes the proxy config over the proxy's admin
// socket, writes status and Events (the leader only, with --leader-elect).

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/flags.h"
#include "common/log.h"
#include "config/proxy_config.h"
#include "control_http/listen.h"
#include "controller/events.h"
#include "controller/leader_election.h"
#include "controller/metrics_server.h"
#include "controller/reconciler.h"
#include "kube/cache.h"
#include "kube/informer.h"
#include "kube/kubeconfig.h"
#include "kube/rest_client.h"
#include "metrics/exposition.h"
#include "metrics/process.h"

namespace {

using namespace sticky;
using namespace sticky::op;

constexpr const char* kSummary =
    R"(Watches StickyRoutes (kubesticky.io/v1alpha1) and Pods, computes the sticky-proxy config and
pushes it to the proxy over its admin Unix socket; writes StickyRoute status and Events.)";

constexpr const char* kFooter = R"(Durations are like 500ms, 10s, 1m.
Exit status: 0 after SIGTERM or SIGINT, 1 on a startup error, 2 on a usage error.)";

struct Flags {
  std::string admin_socket;
  std::string kubeconfig;
  std::vector<std::string> namespaces;  // empty = all
  bool leader_elect = false;
  std::string lease_namespace;
  std::string lease_name = "sticky-operator";
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
  std::chrono::milliseconds proxy_poll{1000};
  std::chrono::milliseconds status_interval{10000};
  std::string identity;
  std::string metrics_listen = "0.0.0.0:8081";  // empty or "0": off
};

// /healthz fails when the reconcile loop has not made progress for this long. Every call in a
// pass has a timeout (10 s to the API server, 2 s to the proxy) and progress is marked between
// calls, so only a call that never returns gets here.
constexpr auto kReconcileStallLimit = std::chrono::minutes(2);

bool metricsOff(const std::string& listen) {
  return listen.empty() || listen == "0";
}

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

/// A flag that takes a positive duration ("500ms", "10s", "1m") into `out`.
FlagSet::Apply durationInto(std::chrono::milliseconds& out) {
  return [&out](const std::string& value) -> Result<Ok> {
    auto d = parseDuration(value);
    if (!d || d->count() <= 0) return fail("a positive duration such as 10s");
    out = *d;
    return Ok{};
  };
}

std::string defaultIdentity() {
  if (const char* pod = std::getenv("POD_NAME"); pod && *pod) return pod;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0 && host[0]) return host;
  return "sticky-operator-" + std::to_string(getpid());
}

/// The flags into `f`; an exit code when the process should stop here (help, version, usage).
std::optional<int> parseFlags(int argc, char** argv, Flags& f) {
  FlagSet set("sticky-operator", kSummary, kFooter);
  set.addString("--admin-socket", "PATH", "the proxy's admin socket (required)", &f.admin_socket);
  set.addString("--kubeconfig", "PATH",
                "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)",
                &f.kubeconfig);
  set.addValue(
      "--namespaces", "LIST", "\"all\" (default) or a comma-separated list of namespaces to watch",
      [&f](const std::string& value) -> Result<Ok> {
        f.namespaces.clear();
        if (value == "all") return Ok{};
        f.namespaces = splitList(value);
        if (f.namespaces.empty()) return fail("\"all\" or namespace names");
        return Ok{};
      },
      "STICKY_NAMESPACES");
  set.addBool("--leader-elect",
              "only the holder of a Lease writes status and Events (default off: this replica "
              "always writes); --leader-elect=false turns it off",
              &f.leader_elect);
  set.addString("--lease-namespace", "NS",
                "namespace of the Lease (default: the pod's / kubeconfig's namespace)",
                &f.lease_namespace);
  set.addString("--lease-name", "NAME", "name of the Lease (default sticky-operator)",
                &f.lease_name);
  set.addValue("--lease-duration", "DUR", "how long a lease is held without renewal (default 15s)",
               durationInto(f.lease_duration));
  set.addValue("--renew-deadline", "DUR",
               "the leader steps down when it could not renew for this long (default 10s)",
               durationInto(f.renew_deadline));
  set.addValue("--retry-period", "DUR", "how often the lease is renewed or tried (default 2s)",
               durationInto(f.retry_period));
  set.addString("--identity", "NAME",
                "this replica's name in the Lease (default $POD_NAME or the hostname)",
                &f.identity);
  set.addValue("--proxy-poll", "DUR",
               "how often the proxy is asked for its version and sessions (default 1s)",
               durationInto(f.proxy_poll));
  set.addString("--metrics-listen", "ADDR:PORT",
                "serve Prometheus metrics at GET /metrics, and the probes GET /healthz and GET "
                "/readyz, on ADDR:PORT (default 0.0.0.0:8081; 0 or empty: off)",
                &f.metrics_listen, "STICKY_METRICS_LISTEN");
  set.addValue("--status-interval", "DUR",
               "minimum time between status writes that only change session counters (default "
               "10s)",
               durationInto(f.status_interval));

  auto parsed = set.parse(argc, argv);
  if (!parsed.exit_code) {
    if (f.admin_socket.empty())
      parsed = set.usageError("--admin-socket is required (the proxy's admin socket)");
    else if (f.renew_deadline >= f.lease_duration)
      parsed = set.usageError("--renew-deadline must be shorter than --lease-duration");
    else if (f.retry_period >= f.renew_deadline)
      parsed = set.usageError("--retry-period must be shorter than --renew-deadline");
    else if (!metricsOff(f.metrics_listen)) {
      if (auto at = control::parseListenAddress(f.metrics_listen); !at)
        parsed = set.usageError("--metrics-listen: " + at.error().message);
    }
  }
  if (parsed.exit_code) return parsed.finish();
  if (f.identity.empty()) f.identity = defaultIdentity();
  setLogLevel(set.logLevel());
  setLogFormat(set.logFormat());
  return std::nullopt;
}

std::string joinList(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "all" : out;
}

/// Runs the operator until SIGTERM or SIGINT and stops every part of it; 0 then, 1 (with the
/// reason on stderr) when it cannot start.
int serve(const Flags& flags, Logger& logger) {
  // Signals are taken synchronously by this thread; every thread started below inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto cluster = kube::loadDefault(flags.kubeconfig);
  if (!cluster) {
    std::fprintf(stderr, "sticky-operator: %s\n", cluster.error().message.c_str());
    return 1;
  }
  kube::KubeClientOptions client_options;
  // Bounded so a lease renewal or status write cannot hang past the leader's renew deadline,
  // and SIGTERM is honoured well within a pod's grace period.
  client_options.request_timeout = std::chrono::seconds(10);
  auto client = kube::KubeClient::create(*cluster, client_options);
  if (!client) {
    std::fprintf(stderr, "sticky-operator: %s\n", client.error().message.c_str());
    return 1;
  }
  std::shared_ptr<kube::KubeClient> kube_client = *client;

  auto cache = std::make_shared<kube::ObjectCache>();
  kube::InformerOptions informer_options;
  informer_options.namespaces = flags.namespaces;
  informer_options.report_error = [&logger](const std::string& message) {
    logger.warn("watch error", {{"error", message}});
  };
  kube::Informer informer(*kube_client, cache, informer_options);

  std::unique_ptr<LeaderElector> elector;
  if (flags.leader_elect) {
    LeaseSettings lease;
    lease.ns = flags.lease_namespace.empty() ? cluster->namespace_ : flags.lease_namespace;
    if (lease.ns.empty()) lease.ns = "default";
    lease.name = flags.lease_name;
    lease.identity = flags.identity;
    lease.lease_duration = std::chrono::duration_cast<std::chrono::seconds>(flags.lease_duration);
    lease.renew_deadline = std::chrono::duration_cast<std::chrono::seconds>(flags.renew_deadline);
    if (lease.lease_duration.count() < 1) lease.lease_duration = std::chrono::seconds(1);
    lease.retry_period = flags.retry_period;
    elector = std::make_unique<LeaderElector>(*kube_client, lease, logger);
  }

  EventRecorder events(*kube_client, "sticky-operator", flags.identity);
  ReconcilerOptions options;
  options.admin_socket = flags.admin_socket;
  options.proxy_poll = flags.proxy_poll;
  options.counter_status_interval =
      std::chrono::duration_cast<std::chrono::seconds>(flags.status_interval);
  LeaderElector* elector_ptr = elector.get();
  Reconciler reconciler(
      cache, *kube_client, [elector_ptr] { return !elector_ptr || elector_ptr->isLeader(); },
      &events, logger, options);
  if (elector) elector->onChange([&reconciler](bool) { reconciler.poke(); });

  std::unique_ptr<MetricsServer> metrics_server;
  if (!metricsOff(flags.metrics_listen)) {
    MetricsSources sources;
    std::string lease_name = flags.lease_name;
    kube::KubeClient* api = kube_client.get();
    sources.render = [api, &informer, &reconciler, elector_ptr,
                      lease_name](metrics::Exposition& x) {
      reconciler.renderMetrics(x);
      api->renderMetrics(x);
      informer.renderMetrics(x);
      if (elector_ptr) {
        x.family("leader_election_master_status", "gauge",
                 "Gauge of if the reporting system is master of the relevant lease, 0 indicates "
                 "backup, 1 indicates master. 'name' is the string used to identify the lease.");
        x.sample("leader_election_master_status", {{"name", lease_name}},
                 uint64_t{elector_ptr->isLeader() ? 1u : 0u});
      }
      metrics::renderBuildInfo(x);
      metrics::renderProcessMetrics(x);
    };
    sources.unhealthy = [&reconciler] {
      return reconciler.stalled(
          std::chrono::duration_cast<std::chrono::milliseconds>(kReconcileStallLimit));
    };
    sources.not_ready = [&informer]() -> std::optional<std::string> {
      if (informer.synced()) return std::nullopt;
      return std::string(
          "the informer caches have not synced yet (first list of StickyRoutes "
          "and Pods)");
    };
    auto at = control::parseListenAddress(flags.metrics_listen);
    if (!at) {
      std::fprintf(stderr, "sticky-operator: %s\n", at.error().message.c_str());
      return 1;
    }
    auto started = MetricsServer::start(*at, std::move(sources));
    if (!started) {
      std::fprintf(stderr, "sticky-operator: %s\n", started.error().message.c_str());
      return 1;
    }
    metrics_server = std::move(started).value();
  }

  logger.info("operator starting",
              {{"server", cluster->server},
               {"namespaces", joinList(flags.namespaces)},
               {"admin_socket", flags.admin_socket},
               {"leader_elect", flags.leader_elect ? "true" : "false"},
               {"identity", flags.identity},
               {"metrics_port",
                metrics_server ? std::to_string(metrics_server->port()) : std::string("off")}});
  informer.start();
  if (elector) elector->start();
  reconciler.start();

  int sig = 0;
  sigwait(&stop_signals, &sig);
  logger.info("stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  if (metrics_server) metrics_server->stop();  // its handlers read the parts stopped below
  reconciler.stop();
  if (elector) elector->stop();  // releases the lease if held
  informer.stop();
  cache->shutdown();
  return 0;
}

int run(const Flags& flags) {
  Logger logger;  // the process-wide level and format (the flags)
  int status = serve(flags, logger);
  if (status != 0) return status;
  // Every client is gone; let the HTTP library finish what it does after a call returns.
  if (!kube::waitForBackgroundWork(std::chrono::milliseconds(250), std::chrono::seconds(5)))
    logger.warn("the HTTP client's background work did not finish within 5s");
  logger.info("operator stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Flags flags;
    if (auto exit_code = parseFlags(argc, argv, flags)) return *exit_code;
    return run(flags);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sticky-operator: %s\n", e.what());
    return kExitFailure;
  }
}
