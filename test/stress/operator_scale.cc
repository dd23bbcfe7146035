// How the operator copes with absurd input, measured against a real kube-apiserver + etcd:
//
//   pods         one StickyRoute over N Ready pods (default 10,000): time from `kubectl apply`
//                to the proxy serving all N endpoints, size of the pushed config, memory
//   routes       N StickyRoutes (default 1,000) over the same 3 pods: time until the proxy has
//                them all
//   expressions  a route whose selector has N matchExpressions (default 10,000): accepted or
//                refused by the API server, and the reconcile time if accepted
//   annotations  10 pods given the largest annotation the API server takes (a 1 MiB one is
//                refused there): the operator's memory before and after
//
// Figures are printed (MEASURE lines), never asserted; the program fails only if a step does
// not complete at all within its deadline. Run with test/stress/operator_scale.sh.

#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin_api/admin_client.h"
#include "config/proxy_config.h"
#include "kube/kubeconfig.h"
#include "kube/rest_client.h"
#include "support/kube_cluster.h"
#include "support/paths.h"
#include "support/process.h"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using sticky::test::KubeCluster;
using sticky::test::Process;
using sticky::test::TempDir;
using Clock = std::chrono::steady_clock;

const std::string kNamespace = "scale";

struct Sizes {
  int pods = 10000;
  int routes = 1000;
  int expressions = 10000;
  int annotated = 10;
};

/// Thrown by die(): main() reports it once the processes started so far are stopped (their
/// destructors run as it unwinds; std::exit would leave them running).
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void die(const std::string& what) {
  throw Failure(what);
}

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

long statusKb(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0)
      return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
  }
  return -1;
}

void waitOrDie(const std::string& what, std::chrono::seconds deadline,
               const std::function<bool()>& done) {
  if (!sticky::test::waitFor(done, deadline, 200ms))
    die("timed out after " + std::to_string(deadline.count()) + " s: " + what);
}

json podObject(const std::string& name, const std::string& app) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"labels", {{"app", app}}}}},
          {"spec",
           {{"nodeName", KubeCluster::kNodeName},
            {"containers",
             {{{"name", "app"},
               {"image", "kube-sticky/test-backend:dev"},
               {"ports", {{{"name", "http"}, {"containerPort", 8080}}}}}}}}}};
}

json readyStatus(const std::string& ip) {
  return {{"status",
           {{"phase", "Running"},
            {"podIP", ip},
            {"podIPs", {{{"ip", ip}}}},
            {"conditions",
             {{{"type", "Ready"}, {"status", "True"}},
              {{"type", "ContainersReady"}, {"status", "True"}}}}}}};
}

/// Creates pods name-0..name-(n-1) with label app=`app`, Ready, from 8 threads.
void createPods(sticky::op::kube::KubeApi& api, const std::string& name, const std::string& app,
                int n) {
  const std::string collection = "/api/v1/namespaces/" + kNamespace + "/pods";
  std::atomic<int> next{0};
  std::atomic<int> failed{0};
  std::mutex mu;
  std::string first_error;  // guarded by mu
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < n; i = next++) {
        std::string pod = name + "-" + std::to_string(i);
        std::string ip = "10." + std::to_string(i / 65536 % 256) + "." +
                         std::to_string(i / 256 % 256) + "." + std::to_string(i % 256);
        auto created = api.create(collection, podObject(pod, app));
        if (!created) {
          std::lock_guard lock(mu);
          if (failed++ == 0) first_error = created.error().message;
          continue;
        }
        auto status = api.patch(collection + "/" + pod, readyStatus(ip),
                                sticky::op::kube::PatchType::Merge, "status");
        std::lock_guard lock(mu);
        if (!status && failed++ == 0) first_error = status.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failed > 0) die(std::to_string(failed.load()) + " pods failed, first: " + first_error);
}

/// A route of its own host (routes that match the same requests would be refused as
/// ConflictingMatch, all but one).
std::string routeYaml(const std::string& name, const std::string& selector) {
  return "apiVersion: kubesticky.io/v1alpha1\nkind: StickyRoute\nmetadata:\n  name: " + name +
         "\nspec:\n  selector:\n" + selector +
         "  port: http\n  header: client-id\n  match: {hosts: [" + name + ".scale.example]}\n";
}

int run(int argc, char** argv) {
  Sizes sizes;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    int value = std::atoi(argv[i + 1]);
    if (value <= 0) die(flag + " needs a positive number");
    if (flag == "--pods")
      sizes.pods = value;
    else if (flag == "--routes")
      sizes.routes = value;
    else if (flag == "--expressions")
      sizes.expressions = value;
    else if (flag == "--annotated")
      sizes.annotated = value;
    else
      die("unknown flag " + flag + " (--pods, --routes, --expressions, --annotated)");
  }

  KubeCluster cluster;
  cluster.kubectlOrThrow(
      {"apply", "-f", sticky::test::sourceDir() + "/crds/stickyroutes.kubesticky.io.yaml"});
  cluster.kubectlOrThrow(
      {"wait", "--for=condition=Established", "--timeout=30s", "crd/stickyroutes.kubesticky.io"});
  cluster.createNamespace(kNamespace);
  auto config = sticky::op::kube::loadKubeconfig(cluster.kubeconfigPath());
  if (!config) die(config.error().message);
  auto client = sticky::op::kube::KubeClient::create(*config);
  if (!client) die(client.error().message);

  TempDir dir;
  const std::string socket = dir.file("admin.sock");
  Process proxy({sticky::test::proxyBinary(), "--admin-socket", socket, "--listen", "127.0.0.1:0",
                 "--workers", "1", "--log-level", "warn"},
                dir.file("proxy.log"));
  Process op(
      {sticky::test::operatorBinary(), "--kubeconfig", cluster.kubeconfigPath(), "--admin-socket",
       socket, "--namespaces", kNamespace, "--identity", "scale", "--log-level", "warn",
       "--metrics-listen", "0"},  // no port: nothing else on this machine can be in the way
      dir.file("operator.log"));
  sticky::admin::AdminClient admin(socket, 10s);
  waitOrDie("the proxy's admin socket", 30s, [&] { return admin.healthy(); });

  auto operatorAlive = [&] {
    if (!op.running()) die("the operator exited: " + op.log());
  };
  auto endpointsOf = [&](const std::string& route) -> size_t {
    operatorAlive();
    auto stats = admin.stats();
    if (!stats) return 0;
    const auto* r = stats->findRoute(kNamespace + "/" + route);
    return r ? r->endpoints.size() : 0;
  };
  auto measure = [](const std::string& name, double value, const std::string& unit,
                    const std::string& what) {
    std::printf("MEASURE %s=%.3f %s  (%s)\n", name.c_str(), value, unit.c_str(), what.c_str());
    std::fflush(stdout);
  };

  // --- pods -------------------------------------------------------------------------------
  auto t0 = Clock::now();
  createPods(**client, "big", "big", sizes.pods);
  measure("pods_created_s", secondsSince(t0), "s",
          std::to_string(sizes.pods) + " Ready pods created (create + status), 8 clients");
  long op_rss_before = statusKb(op.pid(), "VmRSS");
  t0 = Clock::now();
  cluster.applyYaml(routeYaml("big", "    matchLabels: {app: big}\n"), kNamespace);
  waitOrDie("the proxy serving every pod of route big", 600s,
            [&] { return endpointsOf("big") == static_cast<size_t>(sizes.pods); });
  measure("apply_to_all_endpoints_s", secondsSince(t0), "s",
          "kubectl apply of a route over " + std::to_string(sizes.pods) +
              " pods to the proxy serving all of them");
  auto served = admin.getConfig();
  if (!served || !served->has_value()) die("GET /v1/config failed");
  measure("pushed_config_bytes", static_cast<double>(sticky::toJsonString(**served).size()), "B",
          "the config pushed to the proxy (limit 16 MiB)");
  measure("operator_rss_mb", statusKb(op.pid(), "VmRSS") / 1024.0, "MiB",
          "operator resident memory with " + std::to_string(sizes.pods) + " pods cached (" +
              std::to_string(op_rss_before / 1024) + " MiB before the route)");
  measure("proxy_rss_mb", statusKb(proxy.pid(), "VmRSS") / 1024.0, "MiB",
          "proxy resident memory serving them");

  // --- routes -----------------------------------------------------------------------------
  createPods(**client, "small", "small", 3);
  std::string routes;
  for (int i = 0; i < sizes.routes; ++i) {
    routes += "---\n" + routeYaml("r-" + std::to_string(i), "    matchLabels: {app: small}\n");
  }
  t0 = Clock::now();
  cluster.applyYaml(routes, kNamespace);
  double applied = secondsSince(t0);
  waitOrDie("the proxy serving every route", 600s, [&] {
    operatorAlive();
    auto stats = admin.stats();
    return stats && stats->routes.size() == static_cast<size_t>(sizes.routes + 1);
  });
  measure("apply_to_all_routes_s", secondsSince(t0), "s",
          std::to_string(sizes.routes) + " routes, kubectl apply took " + std::to_string(applied) +
              " s of it");
  measure("operator_rss_mb", statusKb(op.pid(), "VmRSS") / 1024.0, "MiB",
          "operator resident memory with the routes too");

  // --- expressions ------------------------------------------------------------------------
  std::string expressions = "    matchLabels: {app: big}\n    matchExpressions:\n";
  for (int i = 0; i < sizes.expressions; ++i) {
    expressions += "    - {key: absent-" + std::to_string(i) + ", operator: DoesNotExist}\n";
  }
  t0 = Clock::now();
  auto applied_expr =
      // create, not apply: apply's last-applied annotation would exceed the API server's 256 KiB
      cluster.kubectl({"create", "-n", kNamespace, "-f", "-"}, routeYaml("expr", expressions));
  if (!applied_expr.ok()) {
    std::printf("MEASURE expressions_route=refused  (%d matchExpressions: %s)\n", sizes.expressions,
                applied_expr.err.substr(0, 300).c_str());
  } else {
    waitOrDie("the proxy serving the route with many expressions", 600s,
              [&] { return endpointsOf("expr") == static_cast<size_t>(sizes.pods); });
    measure("apply_to_expressions_route_s", secondsSince(t0), "s",
            std::to_string(sizes.expressions) + " matchExpressions over " +
                std::to_string(sizes.pods) + " pods");
  }

  // --- annotations ------------------------------------------------------------------------
  // The API server caps a pod's annotations at 256 KiB in all: a 1 MiB one is refused there
  // (reported), so the pods get the largest that passes.
  long before = statusKb(op.pid(), "VmRSS");
  auto annotate = [&](int pod, size_t bytes) {
    return (*client)->patch(
        "/api/v1/namespaces/" + kNamespace + "/pods/big-" + std::to_string(pod),
        {{"metadata", {{"annotations", {{"scale/blob", std::string(bytes, 'x')}}}}}});
  };
  if (auto refused = annotate(0, 1024 * 1024); !refused)
    std::printf("MEASURE annotation_1mib=refused  (%s)\n", refused.error().message.c_str());
  const size_t annotation_bytes = 256 * 1024 - 1024;
  for (int i = 0; i < sizes.annotated; ++i) {
    if (auto patched = annotate(i, annotation_bytes); !patched)
      die("a " + std::to_string(annotation_bytes) + " B annotation: " + patched.error().message);
  }
  std::this_thread::sleep_for(5s);  // the watch events arrive and are decoded
  operatorAlive();
  if (endpointsOf("big") != static_cast<size_t>(sizes.pods)) die("route big lost endpoints");
  measure("operator_rss_growth_mb", (statusKb(op.pid(), "VmRSS") - before) / 1024.0, "MiB",
          std::to_string(sizes.annotated) + " pods given a " + std::to_string(annotation_bytes) +
              " B annotation each");
  operatorAlive();
  std::printf("operator log tail:\n%s\n",
              op.log().substr(op.log().size() > 2000 ? op.log().size() - 2000 : 0).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Failure& failure) {
    std::fprintf(stderr, "operator_scale: %s\n", failure.what());
    return 1;
  }
}
