#pragma once
// The end-to-end world of the operator's integration tests, shared by operator_test.cc and
// operator_events_test.cc: a real kube-apiserver with the CRD, a sticky-proxy, the sticky-operator
// binary, and sticky-test-backend processes standing in for pods on 127.x.y.z loopback addresses.
// Each Stack works in its own namespace with its own proxy and operator.

#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin_api/admin_client.h"
#include "support/http_client.h"
#include "support/kube_cluster.h"
#include "support/paths.h"
#include "support/process.h"
#include "support/proxy_process.h"
#include "support/redis_server.h"

namespace sticky::test {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

inline const std::string kCrdPath =
    sticky::test::sourceDir() + "/crds/stickyroutes.kubesticky.io.yaml";
inline constexpr auto kDeadline = 60s;  // generous: the machine is shared and slow at times

inline double millisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

inline KubeCluster& clusterWithCrd(KubeCluster& kube = KubeCluster::shared()) {
  static std::set<const KubeCluster*> applied;
  if (!applied.count(&kube)) {
    kube.kubectlOrThrow({"apply", "-f", kCrdPath});
    bool served = waitFor(
        [&] {
          return kube.kubectl({"wait", "--for=condition=Established", "--timeout=5s",
                               "crd/stickyroutes.kubesticky.io"})
                     .ok() &&
                 kube.kubectl({"get", "sr", "-A"}).ok();
        },
        kDeadline, 200ms);
    REQUIRE_MESSAGE(served, "the StickyRoute CRD is not served");
    applied.insert(&kube);
  }
  return kube;
}

// A distinct loopback address for every pod of this process; the second octet comes from the
// pid so test processes running side by side do not share addresses.
inline std::string nextPodIp() {
  static std::atomic<int> next{0};
  int n = next++;
  int second = static_cast<int>(getpid() % 200) + 20;
  return "127." + std::to_string(second) + "." + std::to_string(n / 200) + "." +
         std::to_string(n % 200 + 2);
}

inline std::string uniqueNamespace(const std::string& base) {
  return base + "-" + std::to_string(getpid());
}

struct BackendProcess {
  std::string name;
  std::string ip;
  int port = 0;
  std::unique_ptr<Process> process;
};

/// The proxy container of the kube-sticky pod: the shared launcher with one worker and an admin
/// socket in the test's directory. The first start lets the proxy pick its port (0); a restart
/// asks for the same one.
class PodProxy : public ProxyProcess {
 public:
  PodProxy(const TempDir& dir, const std::string& id, std::vector<std::string> extra_args = {})
      : ProxyProcess({.log_path = dir.file(id + ".log"),
                      .admin_socket = dir.file(id + "-admin.sock"),
                      .metrics = true,
                      .workers = 1,
                      .extra_args = std::move(extra_args),
                      .start_timeout = kDeadline}) {}
  void start() { restart(); }
  const std::string& socket() const { return options().admin_socket; }
};

class OperatorProcess {
 public:
  OperatorProcess(const KubeCluster& kube, const TempDir& dir, const std::string& id,
                  const std::string& ns, const std::string& admin_socket,
                  std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {sticky::test::operatorBinary(),
                                     "--kubeconfig",
                                     kube.kubeconfigPath(),
                                     "--admin-socket",
                                     admin_socket,
                                     "--namespaces",
                                     ns,
                                     "--identity",
                                     id,
                                     "--proxy-poll",
                                     "500ms",
                                     "--status-interval",
                                     "1s",
                                     "--log-level",
                                     "debug",
                                     "--metrics-listen",
                                     "127.0.0.1:0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = std::make_unique<Process>(argv, dir.file(id + ".log"));
  }

  Process& process() { return *process_; }
  std::string log() const { return process_->log(); }
  /// The metrics port from the start line ("metrics_port=N"); 0 until it is logged.
  uint16_t metricsPort() const {
    std::string text = log();
    size_t at = text.find("metrics_port=");
    if (at == std::string::npos) return 0;
    return static_cast<uint16_t>(std::atoi(text.c_str() + at + std::strlen("metrics_port=")));
  }
  size_t count(const std::string& needle) const {
    std::string text = log();
    size_t n = 0;
    for (size_t pos = text.find(needle); pos != std::string::npos;
         pos = text.find(needle, pos + 1)) {
      ++n;
    }
    return n;
  }

 private:
  std::unique_ptr<Process> process_;
};

inline std::string routeYaml(const std::string& name, const std::string& app,
                             const std::string& extra_spec = "", const std::string& port = "http") {
  return "apiVersion: kubesticky.io/v1alpha1\n"
         "kind: StickyRoute\n"
         "metadata:\n"
         "  name: " +
         name +
         "\n"
         "spec:\n"
         "  selector:\n"
         "    matchLabels:\n"
         "      app: " +
         app +
         "\n"
         "  port: " +
         port +
         "\n"
         "  header: client-id\n" +
         extra_spec;
}

// One test's world: a namespace, a proxy, an operator, and backends standing in for pods.
class Stack {
 public:
  /// In the shared cluster unless `kube` names another (a test that restarts the API server).
  explicit Stack(const std::string& ns_base, bool start_operator = true,
                 std::vector<std::string> proxy_args = {},
                 KubeCluster& kube = KubeCluster::shared())
      : kube_(clusterWithCrd(kube)),
        ns_(uniqueNamespace(ns_base)),
        proxy_(dir_, "proxy", std::move(proxy_args)) {
    kube_.createNamespace(ns_);
    if (start_operator) startOperator();
  }
  void startOperator() {
    op_ = std::make_unique<OperatorProcess>(kube_, dir_, "operator", ns_, proxy_.socket());
  }

  KubeCluster& kube() { return kube_; }
  const std::string& ns() const { return ns_; }
  const TempDir& dir() const { return dir_; }
  PodProxy& proxy() { return proxy_; }
  OperatorProcess& op() { return *op_; }

  /// Starts a backend on a fresh loopback address and creates a Ready pod pointing at it, with
  /// the container port named "http".
  const BackendProcess& addPod(const std::string& name, const std::string& app = "chat") {
    BackendProcess b;
    b.name = name;
    b.ip = nextPodIp();
    b.port = freePort();
    b.process = std::make_unique<Process>(
        std::vector<std::string>{sticky::test::testBackendBinary(), "--listen",
                                 b.ip + ":" + std::to_string(b.port), "--name", name},
        dir_.file("backend-" + name + ".log"));
    HttpClient probe(b.ip, static_cast<uint16_t>(b.port), 1s);
    bool up = waitFor([&] { return probe.get("/").status == 200; }, kDeadline, 20ms);
    REQUIRE_MESSAGE(up, "backend " << name << " did not come up: " << b.process->log());
    kube_.createReadyPod(ns_, name, {{"app", app}}, b.ip, {{"http", b.port}});
    backends_[name] = std::move(b);
    return backends_[name];
  }

  void applyRoute(const std::string& yaml) { kube_.applyYaml(yaml, ns_); }

  HttpResponse send(const std::string& key, const std::string& host = "") {
    Headers headers;
    if (!key.empty()) headers.push_back({"client-id", key});
    if (!host.empty()) headers.push_back({"host", host});
    return client_.get("/", headers);
  }
  /// The pod that answered `key` ("" if no backend answered).
  std::string podFor(const std::string& key, const std::string& host = "") {
    HttpResponse r = send(key, host);
    return r.status == 200 ? r.header("x-backend") : std::string();
  }

  json route(const std::string& name) {
    return json::parse(kube_.kubectlOrThrow({"get", "sr", name, "-n", ns_, "-o", "json"}));
  }
  static std::string condition(const json& route, const std::string& type,
                               const std::string& field = "status") {
    if (!route.contains("status") || !route["status"].contains("conditions")) return "";
    for (const auto& c : route["status"]["conditions"]) {
      if (c.value("type", "") == type) return c.value(field, "");
    }
    return "";
  }
  /// Waits until `predicate(route)` holds; fails the test with the route's last status if not.
  void waitForRoute(const std::string& name, const std::function<bool(const json&)>& predicate,
                    const std::string& what) {
    json last;
    bool ok = waitFor(
        [&] {
          last = route(name);
          return predicate(last);
        },
        kDeadline, 100ms);
    REQUIRE_MESSAGE(ok, what << "; status: " << last.value("status", json()).dump()
                             << "\noperator log tail:\n"
                             << tail(op_ ? op_->log() : ""));
  }

  /// Endpoints of `route` in the proxy, by name -> state.
  std::map<std::string, std::string> proxyEndpoints(const std::string& route_name) {
    std::map<std::string, std::string> out;
    auto stats = proxy_.admin().stats();
    if (!stats) return out;
    const auto* r = stats->findRoute(ns_ + "/" + route_name);
    if (!r) return out;
    for (const auto& e : r->endpoints) out[e.name] = std::string(toString(e.state));
    return out;
  }
  void waitForProxyEndpoints(const std::string& route_name,
                             const std::map<std::string, std::string>& want) {
    bool ok = waitFor([&] { return proxyEndpoints(route_name) == want; }, kDeadline, 50ms);
    REQUIRE_MESSAGE(ok, "proxy endpoints of " << route_name << " never became the expected "
                                              << want.size() << "; operator log tail:\n"
                                              << tail(op_ ? op_->log() : ""));
  }

  static std::string tail(const std::string& text, size_t lines = 30) {
    size_t pos = text.size();
    for (size_t i = 0; i < lines && pos > 0; ++i) pos = text.rfind('\n', pos - 1);
    return pos == std::string::npos ? text : text.substr(pos);
  }

 private:
  KubeCluster& kube_;
  std::string ns_;
  TempDir dir_;
  PodProxy proxy_;
  std::unique_ptr<OperatorProcess> op_;
  std::map<std::string, BackendProcess> backends_;
  HttpClient client_{"127.0.0.1", static_cast<uint16_t>(proxy_.port()), 5s};
};

inline std::vector<std::string> keys(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

// Pins every key (first request) and returns key -> pod.
inline std::map<std::string, std::string> pin(Stack& s, const std::vector<std::string>& ks,
                                              const std::string& host = "") {
  std::map<std::string, std::string> out;
  for (const auto& k : ks) {
    std::string pod = s.podFor(k, host);
    REQUIRE_MESSAGE(!pod.empty(), "no backend answered key " << k);
    out[k] = pod;
  }
  return out;
}

inline void expectSticky(Stack& s, const std::map<std::string, std::string>& pinned,
                         const std::string& host = "") {
  for (const auto& [k, pod] : pinned) CHECK_MESSAGE(s.podFor(k, host) == pod, "key " << k);
}

}  // namespace sticky::test
