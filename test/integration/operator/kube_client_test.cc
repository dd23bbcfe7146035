// The kube layer against a real kube-apiserver 1.20 + etcd (test/fakes/kube_cluster.h).

#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <thread>

#include "kube/cache.h"
#include "kube/informer.h"
#include "kube/kubeconfig.h"
#include "kube/rest_client.h"
#include "kube/watcher.h"
#include "support/kube_cluster.h"
#include "support/paths.h"
#include "support/process.h"

// GCC 12 at -O2 reports std::string temporaries built from literals in initializer lists as out
// of bounds (GCC bug 105329), here in installCrd's kubectl arguments; a false positive.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

namespace sticky::op::kube {
namespace {

using nlohmann::json;
using sticky::test::KubeCluster;
using sticky::test::readFile;
using sticky::test::runCommand;
using sticky::test::TempDir;
using sticky::test::waitFor;
using sticky::test::writeFile;
using namespace std::chrono_literals;

constexpr auto kEventually = 30s;

/// A namespace of our own (namespaces never finish deleting here, so names are never reused).
std::string freshNamespace(KubeCluster& cluster, const std::string& prefix) {
  static std::atomic<int> counter{0};
  const std::string ns =
      prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  cluster.createNamespace(ns);
  return ns;
}

ClusterConfig adminConfig(KubeCluster& cluster) {
  auto config = loadKubeconfig(cluster.kubeconfigPath());
  REQUIRE_MESSAGE(config.ok(), (config.ok() ? "" : config.error().message));
  return *config;
}

std::shared_ptr<KubeClient> clientFor(const ClusterConfig& config, KubeClientOptions options = {}) {
  auto client = KubeClient::create(config, options);
  REQUIRE_MESSAGE(client.ok(), (client.ok() ? "" : client.error().message));
  return *client;
}

void installCrd(KubeCluster& cluster) {
  cluster.applyYaml(readFile(sticky::test::sourceDir() + "/crds/stickyroutes.kubesticky.io.yaml"));
  cluster.kubectlOrThrow({"wait", "--for", "condition=established", "--timeout=60s",
                          "crd/stickyroutes.kubesticky.io"});
}

json configMap(const std::string& name, json data) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}}},
          {"data", std::move(data)}};
}

json stickyRoute(const std::string& name, const std::string& header) {
  return {
      {"apiVersion", "kubesticky.io/v1alpha1"},
      {"kind", "StickyRoute"},
      {"metadata", {{"name", name}}},
      {"spec",
       {{"selector", {{"matchLabels", {{"app", "chat"}}}}}, {"port", 8080}, {"header", header}}}};
}

std::string str(const json& j) {
  return j.is_string() ? j.get<std::string>() : j.dump();
}

/// Runs client.watch() on a thread and records what arrives.
class WatchRecorder {
 public:
  WatchRecorder(std::shared_ptr<KubeClient> client, std::string path, WatchOptions options)
      : client_(std::move(client)) {
    thread_ = std::thread([this, path = std::move(path), options] {
      auto result = client_->watch(
          path, options,
          [this](const WatchEvent& event) {
            std::lock_guard lock(mutex_);
            events_.push_back(event);
          },
          cancel_);
      std::lock_guard lock(mutex_);
      result_.emplace(std::move(result));
    });
  }
  ~WatchRecorder() {
    cancel_.cancel();
    thread_.join();
  }

  std::vector<WatchEvent> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  bool has(WatchEventType type, const std::string& name) const {
    for (const auto& e : events()) {
      if (e.type == type && e.object["metadata"].value("name", "") == name) return true;
    }
    return false;
  }
  bool hasType(WatchEventType type) const {
    for (const auto& e : events()) {
      if (e.type == type) return true;
    }
    return false;
  }
  bool finished() const {
    std::lock_guard lock(mutex_);
    return result_.has_value();
  }
  std::optional<Result<WatchEnd, KubeError>> result() const {
    std::lock_guard lock(mutex_);
    return result_;
  }
  void cancel() { cancel_.cancel(); }

 private:
  std::shared_ptr<KubeClient> client_;
  CancelToken cancel_;
  mutable std::mutex mutex_;
  std::vector<WatchEvent> events_;
  std::optional<Result<WatchEnd, KubeError>> result_;
  std::thread thread_;
};

TEST_CASE("kube client: create, get, list, patch, replace and delete ConfigMaps") {
  KubeCluster& cluster = KubeCluster::shared();
  auto client = clientFor(adminConfig(cluster));
  const std::string ns = freshNamespace(cluster, "crud");
  const std::string collection = collectionPath("/api/v1", "configmaps", ns);
  const std::string path = objectPath("/api/v1", "configmaps", ns, "settings");

  auto created = client->create(collection, configMap("settings", {{"a", "1"}}));
  REQUIRE_MESSAGE(created.ok(), (created.ok() ? "" : created.error().message));
  CHECK_FALSE(str((*created)["metadata"]["uid"]).empty());
  const std::string first_rv = str((*created)["metadata"]["resourceVersion"]);

  auto got = client->get(path);
  REQUIRE(got.ok());
  CHECK(str((*got)["data"]["a"]) == "1");

  auto again = client->create(collection, configMap("settings", {}));
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().conflict());
  CHECK(again.error().reason == "AlreadyExists");
  CHECK(again.error().status_message == "configmaps \"settings\" already exists");
  CHECK(again.error().message.find("POST " + collection) != std::string::npos);

  auto merged = client->patch(path, {{"data", {{"b", "2"}}}}, PatchType::Merge);
  REQUIRE(merged.ok());
  CHECK(str((*merged)["data"]["a"]) == "1");
  CHECK(str((*merged)["data"]["b"]) == "2");

  auto json_patched =
      client->patch(path, json::array({{{"op", "replace"}, {"path", "/data/a"}, {"value", "3"}}}),
                    PatchType::Json);
  REQUIRE_MESSAGE(json_patched.ok(), (json_patched.ok() ? "" : json_patched.error().message));
  CHECK(str((*json_patched)["data"]["a"]) == "3");

  auto strategic =
      client->patch(path, {{"metadata", {{"labels", {{"tier", "gold"}}}}}}, PatchType::Strategic);
  REQUIRE(strategic.ok());
  CHECK(str((*strategic)["metadata"]["labels"]["tier"]) == "gold");

  // Optimistic concurrency: a replace carrying a stale resourceVersion is a 409.
  json stale = configMap("settings", {{"a", "stale"}});
  stale["metadata"]["resourceVersion"] = first_rv;
  auto conflict = client->replace(path, stale);
  REQUIRE_FALSE(conflict.ok());
  CHECK(conflict.error().conflict());
  CHECK(conflict.error().status_message.find("the object has been modified") != std::string::npos);

  json current = *strategic;
  current["data"] = {{"a", "replaced"}};
  auto replaced = client->replace(path, current);
  REQUIRE(replaced.ok());
  CHECK((*replaced)["data"] == json{{"a", "replaced"}});

  // Lists follow `continue` across pages and keep the list's resourceVersion.
  for (const char* name : {"p1", "p2", "p3"}) {
    json cm = configMap(name, {});
    cm["metadata"]["labels"] = {{"paged", "yes"}};
    REQUIRE(client->create(collection, cm).ok());
  }
  ListOptions paged;
  paged.page_size = 1;
  auto all = client->list(collection, paged);
  REQUIRE(all.ok());
  CHECK((*all)["items"].size() == 4);  // settings (+ no kube-root-ca.crt: no controller-manager)
  CHECK_FALSE(str((*all)["metadata"]["resourceVersion"]).empty());
  ListOptions selected;
  selected.label_selector = "paged=yes";
  auto some = client->list(collection, selected);
  REQUIRE(some.ok());
  CHECK((*some)["items"].size() == 3);

  auto removed = client->remove(path);
  REQUIRE(removed.ok());
  auto missing = client->get(path);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().notFound());
  CHECK(missing.error().reason == "NotFound");
  CHECK_FALSE(missing.error().gone());
  auto removed_again = client->remove(path);
  REQUIRE_FALSE(removed_again.ok());
  CHECK(removed_again.error().http_status == 404);
}

TEST_CASE("kube client: the CRD schema's rejection carries the server's message") {
  KubeCluster& cluster = KubeCluster::shared();
  installCrd(cluster);
  auto client = clientFor(adminConfig(cluster));
  const std::string ns = freshNamespace(cluster, "invalid");
  auto bad = client->create(collectionPath("/apis/kubesticky.io/v1alpha1", "stickyroutes", ns),
                            stickyRoute("bad", "not a header"));
  REQUIRE_FALSE(bad.ok());
  INFO(bad.error().message);
  CHECK(bad.error().http_status == 422);
  CHECK(bad.error().reason == "Invalid");
  CHECK(bad.error().status_message.find("StickyRoute.kubesticky.io \"bad\" is invalid") == 0);
  CHECK(bad.error().status_message.find("spec.header") != std::string::npos);
}

TEST_CASE("kube client: the status subresource") {
  KubeCluster& cluster = KubeCluster::shared();
  installCrd(cluster);
  auto client = clientFor(adminConfig(cluster));
  const std::string ns = freshNamespace(cluster, "status");
  const std::string prefix = "/apis/kubesticky.io/v1alpha1";
  REQUIRE(
      client->create(collectionPath(prefix, "stickyroutes", ns), stickyRoute("chat", "client-id"))
          .ok());
  const std::string path = objectPath(prefix, "stickyroutes", ns, "chat");

  auto patched = client->patch(path, {{"status", {{"readyEndpoints", 3}, {"sessions", 12}}}},
                               PatchType::Merge, "status");
  REQUIRE_MESSAGE(patched.ok(), (patched.ok() ? "" : patched.error().message));
  CHECK((*patched)["status"]["readyEndpoints"] == 3);

  // Through the main resource, status is ignored; through /status, spec is.
  auto main = client->patch(path, {{"status", {{"readyEndpoints", 7}}}, {"spec", {{"ttl", "5m"}}}},
                            PatchType::Merge);
  REQUIRE(main.ok());
  auto got = client->get(path);
  REQUIRE(got.ok());
  CHECK((*got)["status"]["readyEndpoints"] == 3);
  CHECK(str((*got)["spec"]["ttl"]) == "5m");

  json with_status = *got;
  with_status["status"]["readyEndpoints"] = 4;
  with_status["spec"]["ttl"] = "9m";
  auto replaced = client->replace(path, with_status, "status");
  REQUIRE_MESSAGE(replaced.ok(), (replaced.ok() ? "" : replaced.error().message));
  auto after = client->get(path);
  REQUIRE(after.ok());
  CHECK((*after)["status"]["readyEndpoints"] == 4);
  CHECK(str((*after)["spec"]["ttl"]) == "5m");

  // A status the schema rejects.
  auto invalid =
      client->patch(path, {{"status", {{"readyEndpoints", -1}}}}, PatchType::Merge, "status");
  REQUIRE_FALSE(invalid.ok());
  CHECK(invalid.error().http_status == 422);
  CHECK(invalid.error().status_message.find("status.readyEndpoints") != std::string::npos);
}

TEST_CASE("kube client: a watch streams ADDED, MODIFIED and DELETED as they happen") {
  KubeCluster& cluster = KubeCluster::shared();
  auto client = clientFor(adminConfig(cluster));
  const std::string ns = freshNamespace(cluster, "watch");
  const std::string collection = collectionPath("/api/v1", "configmaps", ns);
  auto list = client->list(collection);
  REQUIRE(list.ok());
  WatchOptions options;
  options.resource_version = str((*list)["metadata"]["resourceVersion"]);
  options.timeout_seconds = 120;
  WatchRecorder recorder(client, collection, options);

  // Each step waits for its event before the next one: the events arrive while the stream is
  // open, not when it ends.
  REQUIRE(client->create(collection, configMap("w1", {{"v", "1"}})).ok());
  CHECK(waitFor([&] { return recorder.has(WatchEventType::Added, "w1"); }, kEventually));
  REQUIRE(client->patch(collection + "/w1", {{"data", {{"v", "2"}}}}).ok());
  CHECK(waitFor([&] { return recorder.has(WatchEventType::Modified, "w1"); }, kEventually));
  REQUIRE(client->remove(collection + "/w1").ok());
  CHECK(waitFor([&] { return recorder.has(WatchEventType::Deleted, "w1"); }, kEventually));
  CHECK_FALSE(recorder.finished());

  std::vector<WatchEventType> types;
  for (const auto& e : recorder.events()) {
    if (e.type != WatchEventType::Bookmark) types.push_back(e.type);
  }
  CHECK(types == std::vector<WatchEventType>{WatchEventType::Added, WatchEventType::Modified,
                                             WatchEventType::Deleted});
  const WatchEvent modified = recorder.events()[1];
  CHECK(str(modified.object["data"]["v"]) == "2");

  recorder.cancel();
  REQUIRE(waitFor([&] { return recorder.finished(); }, kEventually));
  auto result = recorder.result();
  REQUIRE(result->ok());
  CHECK(**result == WatchEnd::Cancelled);
}

TEST_CASE("kube client: bookmarks arrive and the server ends the watch at timeoutSeconds") {
  KubeCluster& cluster = KubeCluster::shared();
  auto client = clientFor(adminConfig(cluster));
  const std::string ns = freshNamespace(cluster, "bookmark");
  const std::string noise_ns = freshNamespace(cluster, "bookmark-noise");
  const std::string collection = collectionPath("/api/v1", "configmaps", ns);
  const std::string noise = collectionPath("/api/v1", "configmaps", noise_ns);
  REQUIRE(client->create(noise, configMap("noise", {})).ok());
  auto list = client->list(collection);
  REQUIRE(list.ok());
  WatchOptions options;
  options.resource_version = str((*list)["metadata"]["resourceVersion"]);
  options.allow_bookmarks = true;
  options.timeout_seconds = 5;  // the watch cache sends a bookmark ~2 s before the deadline
  WatchRecorder recorder(client, collection, options);
  // kube-apiserver 1.20's watch cache only sends a bookmark carrying a resourceVersion newer than
  // the watch's, i.e. after some ConfigMap anywhere changed while the watch was open. Keep
  // changing one in another namespace until the server ends the watch.
  int n = 0;
  REQUIRE(waitFor(
      [&] {
        (void)client->patch(noise + "/noise", {{"data", {{"n", std::to_string(n++)}}}});
        return recorder.finished();
      },
      kEventually, 300ms));
  auto result = recorder.result();
  REQUIRE_MESSAGE(result->ok(), (result->ok() ? "" : result->error().message));
  CHECK(**result == WatchEnd::ServerClosed);
  std::string seen;
  for (const auto& e : recorder.events()) seen += std::string(watchEventTypeName(e.type)) + " ";
  INFO("events: " << seen);
  REQUIRE(recorder.hasType(WatchEventType::Bookmark));
  for (const auto& e : recorder.events()) {
    CHECK(e.type == WatchEventType::Bookmark);  // nothing happened in `ns` itself
    CHECK(std::stoll(str(e.object["metadata"]["resourceVersion"])) >
          std::stoll(options.resource_version));
  }
}

TEST_CASE("kube client: a watch from an expired resourceVersion gets 410 and the watcher relists") {
  KubeCluster& cluster = KubeCluster::ownCluster();  // it restarts the API server
  auto client = clientFor(adminConfig(cluster));
  const std::string ns = freshNamespace(cluster, "expired");
  const std::string collection = collectionPath("/api/v1", "configmaps", ns);
  REQUIRE(client->create(collection, configMap("old-1", {})).ok());
  REQUIRE(client->create(collection, configMap("old-2", {})).ok());

  // The raw protocol: resourceVersion 1 is older than anything the watch cache holds. The
  // cache's window starts where the API server started (or later, once it has evicted events),
  // so restart the server to make sure version 1 is outside it.
  cluster.restartApiServer();
  WatchOptions options;
  options.resource_version = "1";
  options.timeout_seconds = 10;
  json status;
  CancelToken cancel;
  auto raw = client->watch(
      collection, options,
      [&](const WatchEvent& e) {
        if (e.type == WatchEventType::Error) status = e.object;
      },
      cancel);
  if (raw.ok()) {
    REQUIRE_MESSAGE(status.is_object(), "the watch from version 1 ended without an ERROR event");
    INFO(status.dump());
    CHECK(status.value("code", 0) == 410);
    CHECK(status.value("message", "").find("too old resource version") != std::string::npos);
    // ... which the state machine turns into a relist.
    WatchState watching;
    watching.phase = WatchPhase::Watching;
    watching.resource_version = "1";
    auto step = nextWatchStep(watching, EventReceived{{WatchEventType::Error, status}}, {}, 0);
    CHECK(step.state.phase == WatchPhase::NeedList);
  } else {
    CHECK(raw.error().gone());  // some servers answer with HTTP 410 instead
  }

  // The driver: told to resume from version 1, it gets 410, lists, and delivers the whole set.
  std::mutex mutex;
  std::vector<std::string> listed;
  std::vector<std::string> applied;
  WatcherOptions watcher_options;
  watcher_options.path = collection;
  watcher_options.initial_resource_version = "1";
  watcher_options.watch_timeout_seconds = 60;
  WatchSink sink;
  sink.replace_all = [&](const json& items, const std::string&) {
    std::lock_guard lock(mutex);
    listed.clear();
    for (const auto& item : items) listed.push_back(str(item["metadata"]["name"]));
  };
  sink.apply = [&](const WatchEvent& e) {
    std::lock_guard lock(mutex);
    applied.push_back(std::string(watchEventTypeName(e.type)) + " " +
                      str(e.object["metadata"]["name"]));
  };
  Watcher watcher(*client, watcher_options, sink);
  watcher.start();
  REQUIRE(waitFor([&] { return watcher.listCount() == 1; }, kEventually));
  {
    std::lock_guard lock(mutex);
    CHECK(listed == std::vector<std::string>{"old-1", "old-2"});
    CHECK(applied.empty());  // nothing replayed from before the list
  }
  REQUIRE(client->create(collection, configMap("new-1", {})).ok());
  CHECK(waitFor(
      [&] {
        std::lock_guard lock(mutex);
        return applied == std::vector<std::string>{"ADDED new-1"};
      },
      kEventually));
  CHECK(watcher.state().phase == WatchPhase::Watching);
  CHECK(watcher.listCount() == 1);
  watcher.stop();
}

TEST_CASE("informer: the cache follows StickyRoutes and Pods across an API server restart") {
  KubeCluster& cluster = KubeCluster::ownCluster();  // it restarts the API server
  installCrd(cluster);
  auto client = clientFor(adminConfig(cluster));
  const std::string ns = freshNamespace(cluster, "informer");
  const std::string other = freshNamespace(cluster, "informer-other");
  const std::string routes = collectionPath("/apis/kubesticky.io/v1alpha1", "stickyroutes", ns);
  REQUIRE(client->create(routes, stickyRoute("r1", "client-id")).ok());
  const std::map<std::string, std::string> labels{{"app", "chat"}};
  cluster.createReadyPod(ns, "p1", labels, "127.0.0.2", {{"http", 8080}});
  cluster.createReadyPod(ns, "p2", labels, "127.0.0.3", {{"http", 8080}});
  cluster.createReadyPod(other, "elsewhere", labels, "127.0.0.4", {{"http", 8080}});

  auto cache = std::make_shared<ObjectCache>();
  InformerOptions options;
  options.namespaces = {ns};
  options.watch_timeout_seconds = 60;
  options.backoff = BackoffPolicy{200ms, 2000ms, 2.0, 0.3};
  std::mutex errors_mutex;
  std::vector<std::string> errors;
  options.report_error = [&](const std::string& message) {
    std::lock_guard lock(errors_mutex);
    errors.push_back(message);
  };
  Informer informer(*client, cache, options);
  CHECK(informer.watchers().size() == 2);
  CHECK_FALSE(informer.synced());
  informer.start();
  REQUIRE(waitFor([&] { return informer.synced(); }, kEventually));

  auto podNames = [&] {
    std::vector<std::string> names;
    for (const auto& p : cache->snapshot()->inNamespace("Pod", ns)) {
      names.push_back(str((*p)["metadata"]["name"]));
    }
    return names;
  };
  auto snap = cache->snapshot();
  CHECK(snap->synced());
  CHECK(podNames() == std::vector<std::string>{"p1", "p2"});
  CHECK(snap->inNamespace("Pod", other).empty());  // only the namespaces asked for
  auto r1 = snap->find("StickyRoute", ns, "r1");
  REQUIRE(r1 != nullptr);
  CHECK(str((*r1)["kind"]) == "StickyRoute");  // list items get kind/apiVersion too
  CHECK(str((*r1)["apiVersion"]) == "kubesticky.io/v1alpha1");
  CHECK(str((*snap->find("Pod", ns, "p1"))["status"]["podIP"]) == "127.0.0.2");

  // Live changes flow in.
  cluster.setPodReady(ns, "p2", false);
  CHECK(waitFor(
      [&] {
        auto p2 = cache->snapshot()->find("Pod", ns, "p2");
        if (!p2) return false;
        for (const auto& c : (*p2)["status"]["conditions"]) {
          if (str(c["type"]) == "Ready") return str(c["status"]) == "False";
        }
        return false;
      },
      kEventually));

  // Restart the API server; change things right after it is back (while the watchers are still
  // reconnecting or backing off); the cache must end up matching the server exactly.
  cluster.restartApiServer();
  cluster.deletePod(ns, "p1", /*force=*/true);
  cluster.createReadyPod(ns, "p3", labels, "127.0.0.5", {{"http", 8080}});
  REQUIRE(client->patch(routes + "/r1", {{"metadata", {{"labels", {{"rev", "2"}}}}}}).ok());
  REQUIRE(client->create(routes, stickyRoute("r2", "x-user")).ok());

  CHECK(waitFor([&] { return podNames() == std::vector<std::string>{"p2", "p3"}; }, kEventually));
  CHECK(waitFor(
      [&] {
        auto s = cache->snapshot();
        auto r = s->find("StickyRoute", ns, "r1");
        return r && (*r)["metadata"].contains("labels") &&
               str((*r)["metadata"]["labels"]["rev"]) == "2" &&
               s->find("StickyRoute", ns, "r2") != nullptr;
      },
      kEventually));

  // And the watches are live again afterwards.
  cluster.createReadyPod(ns, "p4", labels, "127.0.0.6", {{"http", 8080}});
  CHECK(waitFor(
      [&] {
        return podNames() == std::vector<std::string>{"p2", "p3", "p4"};
      },
      kEventually));
  for (const auto& w : informer.watchers()) {
    INFO("lists: " << w->listCount());
    CHECK(w->listCount() >= 1);
  }
  {
    std::lock_guard lock(errors_mutex);
    CHECK_FALSE(errors.empty());  // the restart was noticed (and reported)
    for (const auto& e : errors) MESSAGE(e);
  }
  informer.stop();
}

TEST_CASE("informer: watching all namespaces, and one watcher per namespace otherwise") {
  KubeCluster& cluster = KubeCluster::shared();
  installCrd(cluster);
  auto client = clientFor(adminConfig(cluster));
  const std::string a = freshNamespace(cluster, "all-a");
  const std::string b = freshNamespace(cluster, "all-b");
  const std::string c = freshNamespace(cluster, "all-c");
  const std::map<std::string, std::string> labels{{"app", "x"}};
  cluster.createReadyPod(a, "pa", labels, "127.0.0.7", {{"", 80}});
  cluster.createReadyPod(b, "pb", labels, "127.0.0.8", {{"", 80}});
  cluster.createReadyPod(c, "pc", labels, "127.0.0.9", {{"", 80}});

  auto everything = std::make_shared<ObjectCache>();
  Informer all(*client, everything, InformerOptions{});
  CHECK(all.watchers().size() == 2);  // StickyRoutes, Pods: one cluster-wide watch each
  auto some = std::make_shared<ObjectCache>();
  InformerOptions two;
  two.namespaces = {a, b};
  Informer listed(*client, some, two);
  CHECK(listed.watchers().size() == 4);
  all.start();
  listed.start();
  REQUIRE(waitFor([&] { return all.synced() && listed.synced(); }, kEventually));
  for (const auto& ns : {a, b, c}) {
    CHECK(everything->snapshot()->inNamespace("Pod", ns).size() == 1);
  }
  CHECK(some->snapshot()->inNamespace("Pod", a).size() == 1);
  CHECK(some->snapshot()->inNamespace("Pod", b).size() == 1);
  CHECK(some->snapshot()->inNamespace("Pod", c).empty());

  cluster.deletePod(b, "pb", /*force=*/true);
  CHECK(waitFor(
      [&] {
        return everything->snapshot()->find("Pod", b, "pb") == nullptr &&
               some->snapshot()->find("Pod", b, "pb") == nullptr;
      },
      kEventually));
}

TEST_CASE("kube client: TLS verification, insecure mode and client certificates") {
  KubeCluster& cluster = KubeCluster::shared();
  const ClusterConfig admin = adminConfig(cluster);
  const std::string path = "/api/v1/namespaces/default";

  SUBCASE("the cluster CA verifies the server") {
    REQUIRE_FALSE(admin.ca_pem.empty());
    CHECK(clientFor(admin)->get(path).ok());
  }
  SUBCASE("without the cluster CA the server is not trusted") {
    ClusterConfig config = admin;
    config.ca_pem.clear();  // system trust store only
    auto r = clientFor(config)->get(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().transport());
    MESSAGE(r.error().message);
  }
  SUBCASE("a different CA is not trusted either") {
    TempDir dir;
    auto made = runCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-days", "1", "-subj", "/CN=other-ca", "-keyout", dir.file("o.key"),
                            "-out", dir.file("o.crt")});
    REQUIRE_MESSAGE(made.ok(), made.describe());
    ClusterConfig config = admin;
    config.ca_pem = readFile(dir.file("o.crt"));
    auto r = clientFor(config)->get(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().transport());
  }
  SUBCASE("insecure-skip-tls-verify") {
    ClusterConfig config = admin;
    config.ca_pem.clear();
    config.insecure_skip_tls_verify = true;
    CHECK(clientFor(config)->get(path).ok());
  }
  SUBCASE("a client certificate signed by the cluster CA authenticates") {
    TempDir dir;
    const std::string pki = cluster.dir() + "/pki";
    auto key = runCommand({"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj",
                           "/O=system:masters/CN=cert-admin", "-keyout", dir.file("c.key"), "-out",
                           dir.file("c.csr")});
    REQUIRE_MESSAGE(key.ok(), key.describe());
    auto sign =
        runCommand({"/usr/bin/openssl", "x509", "-req", "-in", dir.file("c.csr"), "-CA",
                    pki + "/ca.crt", "-CAkey", pki + "/ca.key", "-CAcreateserial", "-CAserial",
                    dir.file("ca.srl"), "-days", "1", "-out", dir.file("c.crt")});
    REQUIRE_MESSAGE(sign.ok(), sign.describe());
    ClusterConfig config = admin;
    config.token.clear();
    config.token_file.clear();
    config.client_cert_pem = readFile(dir.file("c.crt"));
    config.client_key_pem = readFile(dir.file("c.key"));
    auto r = clientFor(config)->get(path);
    CHECK_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));

    // Without any credentials the same request is anonymous and forbidden.
    config.client_cert_pem.clear();
    config.client_key_pem.clear();
    auto anonymous = clientFor(config)->get(path);
    REQUIRE_FALSE(anonymous.ok());
    CHECK(anonymous.error().http_status == 403);
    CHECK(anonymous.error().status_message.find("system:anonymous") != std::string::npos);
  }
  SUBCASE("unusable PEM is refused up front") {
    ClusterConfig config = admin;
    config.ca_pem = "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n";
    auto client = KubeClient::create(config);
    REQUIRE_FALSE(client.ok());
    CHECK(client.error().message.find("is not usable PEM") != std::string::npos);
  }
}

TEST_CASE("kube client: a rotated service-account token file is picked up") {
  KubeCluster& cluster = KubeCluster::shared();
  TempDir dir;
  const std::string token_file = dir.file("token");
  ClusterConfig config = adminConfig(cluster);
  config.token = "stale-token";
  config.token_file = token_file;
  const std::string path = "/api/v1/namespaces/default";

  SUBCASE("a changed file is re-read at the next check") {
    writeFile(token_file, cluster.token() + "\n");
    KubeClientOptions options;
    options.token_recheck = 0s;
    auto client = clientFor(config, options);
    CHECK(client->get(path).ok());
    writeFile(token_file, "revoked-token\n");
    auto revoked = client->get(path);
    REQUIRE_FALSE(revoked.ok());
    CHECK(revoked.error().http_status == 401);
    writeFile(token_file, cluster.token() + "\n");
    CHECK(client->get(path).ok());
  }
  SUBCASE("a 401 makes the client re-read the file at once") {
    writeFile(token_file, "old-token\n");
    KubeClientOptions options;
    options.token_recheck = std::chrono::hours(1);
    auto client = clientFor(config, options);
    auto before = client->get(path);
    REQUIRE_FALSE(before.ok());
    CHECK(before.error().http_status == 401);
    writeFile(token_file, cluster.token() + "\n");  // rotated
    auto after = client->get(path);
    CHECK_MESSAGE(after.ok(), (after.ok() ? "" : after.error().message));
  }
}

}  // namespace
}  // namespace sticky::op::kube
