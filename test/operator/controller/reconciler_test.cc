// The reconciler's pure helpers, and its push logic against a real sticky-proxy process (no API
// server: this replica is not the leader, so it writes no status). The whole loop with a real
// API server runs in test/integration/operator/operator_test.cc.
#include "controller/reconciler.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>

#include <memory>
#include <mutex>
#include <vector>

#include "kube/cache.h"
#include "metrics/exposition.h"
#include "operator/kube/in_memory_kube_api.h"
#include "support/backend.h"
#include "support/http_client.h"
#include "support/process.h"
#include "support/proxy_process.h"

namespace sticky::op {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using sticky::test::ProxyOptions;
using sticky::test::ProxyProcess;
using sticky::test::TempDir;
using sticky::test::waitFor;

json object(const char* kind, const char* ns, const char* name) {
  return {{"kind", kind}, {"metadata", {{"namespace", ns}, {"name", name}}}};
}

TEST_CASE("clusterSnapshotOf takes every route and only the pods of route namespaces") {
  kube::ObjectCache cache;
  cache.registerSource("StickyRoute", "");
  cache.registerSource("Pod", "");
  cache.replaceAll(
      "StickyRoute", "",
      json::array({object("StickyRoute", "shop", "chat"), object("StickyRoute", "blog", "feed")}),
      "1");
  cache.replaceAll("Pod", "",
                   json::array({object("Pod", "shop", "chat-0"), object("Pod", "blog", "feed-0"),
                                object("Pod", "kube-system", "dns-0")}),
                   "2");
  auto snapshot = cache.snapshot();
  REQUIRE(snapshot->synced());
  ClusterSnapshot s = clusterSnapshotOf(*snapshot);
  CHECK(s.routes.size() == 2);
  REQUIRE(s.pods.size() == 2);
  std::vector<std::string> names;
  for (const auto& p : s.pods) names.push_back(p.metadata.name);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"chat-0", "feed-0"});
}

TEST_CASE("sessionsOf maps the proxy's stats per route and endpoint") {
  admin::ProxyStats stats;
  stats.config_version = 9;
  stats.loaded = true;
  admin::RouteStatsView r;
  r.name = "shop/chat";
  r.sessions = 5;
  r.endpoints = {{"chat-0", "10.0.0.5", 8080, EndpointState::Active, false, 3, 10},
                 {"chat-1", "10.0.0.6", 8080, EndpointState::Draining, false, 2, 4}};
  stats.routes = {r};
  auto s = sessionsOf(stats);
  REQUIRE(s.count("shop/chat") == 1);
  CHECK(s["shop/chat"].total == 5);
  CHECK(s["shop/chat"].by_endpoint ==
        std::map<std::string, uint64_t>{{"chat-0", 3}, {"chat-1", 2}});
}

json route() {
  return {{"apiVersion", "kubesticky.io/v1alpha1"},
          {"kind", "StickyRoute"},
          {"metadata",
           {{"namespace", "shop"},
            {"name", "chat"},
            {"uid", "u1"},
            {"generation", 1},
            {"creationTimestamp", "2026-11-21T10:00:00Z"}}},
          {"spec",
           {{"selector", {{"matchLabels", {{"app", "chat"}}}}},
            {"port", 9000},
            {"header", "client-id"}}}};
}

json pod(const std::string& name, const std::string& ip) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"namespace", "shop"}, {"name", name}, {"labels", {{"app", "chat"}}}}},
          {"status",
           {{"phase", "Running"},
            {"podIP", ip},
            {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
}

// A real sticky-proxy with an admin socket and no config, and a reconciler pushing to it.
struct Fixture {
  TempDir dir;
  std::string socket = dir.file("admin.sock");
  std::unique_ptr<ProxyProcess> proxy_process;
  std::shared_ptr<kube::ObjectCache> cache = std::make_shared<kube::ObjectCache>();
  std::mutex lines_mutex;
  std::vector<std::string> lines;
  Logger logger{LogLevel::Debug, [this](const std::string& l) {
                  std::lock_guard lock(lines_mutex);
                  lines.push_back(l);
                }};
  kube::test::InMemoryKubeApi api;  // status and Events go here when this replica leads
  EventRecorder recorder{api, "sticky-operator", "op-test"};
  std::atomic<bool> leader{false};
  std::unique_ptr<Reconciler> reconciler;

  Fixture() {
    startProxy();
    cache->registerSource("StickyRoute", "");
    cache->registerSource("Pod", "");
    ReconcilerOptions options;
    options.admin_socket = socket;
    options.retry_initial = 20ms;
    options.retry_max = 200ms;
    options.proxy_poll = 100ms;
    reconciler = std::make_unique<Reconciler>(
        cache, api, [this] { return leader.load(); }, &recorder, logger, options);
  }

  /// Starts the proxy, or starts it again (on the same port) after it was killed.
  void startProxy() {
    if (proxy_process) {
      proxy_process->restart();
      return;
    }
    proxy_process = std::make_unique<ProxyProcess>(ProxyOptions{.log_path = dir.file("proxy.log"),
                                                                .admin_socket = socket,
                                                                .workers = 1,
                                                                .start_timeout = 30s});
  }
  admin::AdminClient admin() const { return admin::AdminClient(socket, 2s); }
  std::optional<admin::ProxyStats> stats() const {
    auto s = admin().stats();
    if (!s) return std::nullopt;
    return *s;
  }
  size_t endpoints() const {
    auto s = stats();
    if (!s || s->routes.empty()) return 0;
    return s->routes[0].endpoints.size();
  }
  size_t logged(const std::string& needle) {
    std::lock_guard lock(lines_mutex);
    return std::count_if(lines.begin(), lines.end(),
                         [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  }
};

TEST_CASE("reconciler: nothing is pushed before the cache has synced") {
  Fixture f;
  f.cache->replaceAll("StickyRoute", "", json::array({route()}), "1");  // pods not listed yet
  f.reconciler->reconcileOnce();
  CHECK(f.reconciler->pushes() == 0);
  auto config = f.admin().getConfig();
  REQUIRE(config.ok());
  CHECK_FALSE(config->has_value());
  CHECK(f.logged("waiting for the cache to sync") == 1);
}

TEST_CASE("reconciler: pushes when the desired config differs from the proxy's - only then") {
  Fixture f;
  f.cache->replaceAll("StickyRoute", "", json::array({route()}), "1");
  f.cache->replaceAll("Pod", "", json::array({pod("chat-0", "127.0.0.2")}), "2");
  f.reconciler->reconcileOnce();
  CHECK(f.reconciler->pushes() == 1);
  auto stats = f.stats();
  REQUIRE(stats.has_value());
  CHECK(stats->loaded);
  CHECK(stats->config_version == f.reconciler->desiredVersion());
  CHECK(f.endpoints() == 1);

  // Nothing changed: no push. A status change on the route is no change either.
  f.reconciler->reconcileOnce();
  json with_status = route();
  with_status["status"] = {{"sessions", 3}};
  with_status["metadata"]["resourceVersion"] = "77";
  f.cache->upsert("StickyRoute", with_status);
  f.reconciler->reconcileOnce();
  CHECK(f.reconciler->pushes() == 1);

  // A new pod is.
  f.cache->upsert("Pod", pod("chat-1", "127.0.0.3"));
  f.reconciler->reconcileOnce();
  CHECK(f.reconciler->pushes() == 2);
  CHECK(f.endpoints() == 2);
  CHECK(f.logged("info config pushed") == 2);
}

TEST_CASE("reconciler: a proxy that restarts without config is noticed and re-pushed") {
  Fixture f;
  f.cache->replaceAll("StickyRoute", "", json::array({route()}), "1");
  f.cache->replaceAll("Pod", "", json::array({pod("chat-0", "127.0.0.2")}), "2");
  f.reconciler->reconcileOnce();
  REQUIRE(f.reconciler->pushes() == 1);

  f.proxy_process->kill();
  f.reconciler->reconcileOnce();  // push fails: backoff
  CHECK(f.reconciler->pushes() == 1);
  CHECK(f.logged("warn proxy unreachable") == 1);
  CHECK(f.logged("warn config push failed") >= 1);

  f.startProxy();
  REQUIRE(waitFor(
      [&] {
        f.reconciler->reconcileOnce();
        return f.reconciler->pushes() == 2;
      },
      30s, 20ms));
  CHECK(f.stats()->config_version == f.reconciler->desiredVersion());
  CHECK(f.logged("why=\"proxy has no config\"") == 2);
  CHECK(f.logged("info proxy reachable") == 1);
}

TEST_CASE("reconciler as leader: status written with conditions and observedGeneration") {
  Fixture f;
  f.leader = true;
  const std::string path = kube::kStickyRouteResource.objectPath("shop", "chat");
  auto created = f.api.create(kube::kStickyRouteResource.collectionPath("shop"), route());
  REQUIRE(created.ok());
  f.cache->replaceAll("StickyRoute", "", json::array({*created}), "1");
  f.cache->replaceAll("Pod", "", json::array({pod("chat-0", "127.0.0.2")}), "2");
  f.reconciler->reconcileOnce();
  CHECK(f.reconciler->pushes() == 1);
  CHECK(f.reconciler->statusWrites() == 1);

  auto stored = f.api.get(path);
  REQUIRE(stored.ok());
  json status = (*stored)["status"];
  CHECK(status["observedGeneration"] == 1);
  CHECK(status["readyEndpoints"] == 1);
  const json* accepted = findCondition(status, "Accepted");
  REQUIRE(accepted);
  CHECK((*accepted)["status"] == "True");
  CHECK((*accepted)["reason"] == "Accepted");
  CHECK((*accepted)["observedGeneration"] == 1);
  const json* ready = findCondition(status, "Ready");
  REQUIRE(ready);
  CHECK((*ready)["status"] == "True");
  CHECK((*ready)["reason"] == "Ready");
  CHECK((*ready)["observedGeneration"] == 1);

  // Nothing changed: nothing written.
  f.cache->upsert("StickyRoute", *stored);
  f.reconciler->reconcileOnce();
  CHECK(f.reconciler->statusWrites() == 1);

  // A refused spec (generation 2): Accepted=False with the reason, the new generation observed,
  // the last good spec still served.
  auto bad = f.api.patch(path, {{"spec", {{"port", "Not_A_Port"}}}});
  REQUIRE(bad.ok());
  REQUIRE((*bad)["metadata"]["generation"] == 2);
  f.cache->upsert("StickyRoute", *bad);
  f.reconciler->reconcileOnce();
  CHECK(f.reconciler->statusWrites() == 2);
  stored = f.api.get(path);
  REQUIRE(stored.ok());
  status = (*stored)["status"];
  CHECK(status["observedGeneration"] == 2);
  accepted = findCondition(status, "Accepted");
  REQUIRE(accepted);
  CHECK((*accepted)["status"] == "False");
  CHECK((*accepted)["reason"] == "InvalidSpec");
  CHECK((*accepted)["observedGeneration"] == 2);
  CHECK(f.endpoints() == 1);
}

TEST_CASE("reconciler as leader: a pod's sessions moving and no active endpoint are Events") {
  Fixture f;
  f.leader = true;
  sticky::test::Backend chat0("127.0.0.2", 0, "chat-0");
  sticky::test::Backend chat1("127.0.0.3", chat0.port(), "chat-1");
  json r = route();
  r["spec"]["port"] = chat0.port();
  auto created = f.api.create(kube::kStickyRouteResource.collectionPath("shop"), r);
  REQUIRE(created.ok());
  f.cache->replaceAll("StickyRoute", "", json::array({*created}), "1");
  f.cache->replaceAll("Pod", "",
                      json::array({pod("chat-0", "127.0.0.2"), pod("chat-1", "127.0.0.3")}), "2");
  f.reconciler->reconcileOnce();
  REQUIRE(f.endpoints() == 2);

  // Sessions through the real proxy; count the ones chat-1 holds.
  sticky::test::HttpClient client("127.0.0.1", f.proxy_process->port(), 5s);
  int on_chat1 = 0;
  for (int i = 0; i < 20; ++i) {
    auto response = client.get("/", {{"client-id", "k" + std::to_string(i)}});
    REQUIRE(response.status == 200);
    if (response.header("x-backend") == "chat-1") ++on_chat1;
  }
  REQUIRE(on_chat1 > 0);
  f.reconciler->reconcileOnce();  // reads the sessions

  auto events = [&](const std::string& reason) {
    std::vector<json> out;
    auto listed = f.api.list(kube::kEventResource.collectionPath("shop"));
    REQUIRE(listed.ok());
    for (const auto& e : (*listed)["items"]) {
      if (e["reason"] == reason) out.push_back(e);
    }
    return out;
  };
  CHECK(events("SessionsMoved").empty());
  f.cache->remove("Pod", {"shop", "chat-1"});
  f.reconciler->reconcileOnce();
  auto moved = events("SessionsMoved");
  REQUIRE(moved.size() == 1);
  CHECK(moved[0]["type"] == "Normal");
  CHECK(moved[0]["message"] == std::to_string(on_chat1) +
                                   (on_chat1 == 1 ? " session" : " sessions") +
                                   " will move off pod chat-1 (deleted)");
  CHECK(moved[0]["involvedObject"]["name"] == "chat");

  // The last pod goes too: Ready turns False with a Warning; chat-0's sessions move as well but
  // within the interval, so they wait for the next SessionsMoved.
  f.cache->upsert("StickyRoute", *f.api.get(kube::kStickyRouteResource.objectPath("shop", "chat")));
  f.cache->remove("Pod", {"shop", "chat-0"});
  f.reconciler->reconcileOnce();
  auto none = events("NoActiveEndpoints");
  REQUIRE(none.size() == 1);
  CHECK(none[0]["type"] == "Warning");
  CHECK(events("SessionsMoved").size() == 1);
}

TEST_CASE("reconciler loop: cache changes reach the proxy on their own") {
  Fixture f;
  f.cache->replaceAll("StickyRoute", "", json::array({route()}), "1");
  f.cache->replaceAll("Pod", "", json::array(), "2");
  f.reconciler->start();
  REQUIRE(waitFor([&] { return f.stats() && f.stats()->loaded; }, 30s));
  // A burst of changes: the proxy ends with all of them.
  for (int i = 0; i < 20; ++i) {
    f.cache->upsert("Pod", pod("chat-" + std::to_string(i), "127.0.0." + std::to_string(i + 2)));
  }
  CHECK(waitFor([&] { return f.endpoints() == 20; }, 30s));
  f.cache->remove("Pod", {"shop", "chat-0"});
  CHECK(waitFor([&] { return f.endpoints() == 19; }, 30s));
  f.reconciler->stop();
  f.reconciler->stop();  // idempotent
}

}  // namespace
}  // namespace sticky::op

namespace sticky::op {
namespace {

bool hasLine(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST_CASE("reconciler metrics: passes and pushes by result, pass time, in sync, stall") {
  Fixture f;
  auto scrape = [&] {
    metrics::Exposition x;
    f.reconciler->renderMetrics(x);
    return x.take();
  };
  const std::string total = R"(controller_runtime_reconcile_total{controller="stickyroute",)";
  const std::string count =
      R"(controller_runtime_reconcile_time_seconds_count{controller="stickyroute"} )";

  // Before the cache synced nothing is counted.
  f.cache->replaceAll("StickyRoute", "", json::array({route()}), "1");
  f.reconciler->reconcileOnce();
  std::string text = scrape();
  CHECK(hasLine(text, total + R"(result="success"} 0)"));
  CHECK(hasLine(text, total + R"(result="error"} 0)"));
  CHECK(hasLine(text, total + R"(result="requeue"} 0)"));
  CHECK(hasLine(text, total + R"(result="requeue_after"} 0)"));
  CHECK(hasLine(text, count + "0"));
  CHECK(
      hasLine(text, R"(controller_runtime_max_concurrent_reconciles{controller="stickyroute"} 1)"));
  CHECK(hasLine(text, R"(controller_runtime_active_workers{controller="stickyroute"} 0)"));

  // A pass that pushes: success.
  f.cache->replaceAll("Pod", "", json::array({pod("chat-0", "127.0.0.2")}), "2");
  f.reconciler->reconcileOnce();
  text = scrape();
  CHECK(hasLine(text, total + R"(result="success"} 1)"));
  CHECK(hasLine(text, count + "1"));
  CHECK(hasLine(text, R"(sticky_operator_config_pushes_total{result="success"} 1)"));
  CHECK(hasLine(text, "sticky_operator_proxy_config_in_sync 1"));

  // The proxy is gone: the push fails, the pass is an error.
  f.proxy_process->kill();
  f.reconciler->reconcileOnce();
  text = scrape();
  CHECK(hasLine(text, total + R"(result="error"} 1)"));
  CHECK(hasLine(text, R"(controller_runtime_reconcile_errors_total{controller="stickyroute"} 1)"));
  CHECK(hasLine(text, R"(sticky_operator_config_pushes_total{result="failed"} 1)"));
  CHECK(hasLine(text, R"(sticky_operator_config_pushes_total{result="rejected"} 0)"));
  CHECK(hasLine(text, "sticky_operator_proxy_config_in_sync 0"));
  CHECK(hasLine(text, count + "2"));
  CHECK(hasLine(text, R"(sticky_operator_status_writes_total{result="success"} 0)"));

  // Progress was marked by the passes; a limit of zero calls anything since then a stall.
  CHECK_FALSE(f.reconciler->stalled(std::chrono::minutes(1)).has_value());
  auto stalled = f.reconciler->stalled(std::chrono::milliseconds(0));
  REQUIRE(stalled.has_value());
  CHECK(stalled->rfind("the reconcile loop has made no progress for ", 0) == 0);
}

}  // namespace
}  // namespace sticky::op
