// sticky-operator end to end: a real kube-apiserver + etcd, the real sticky-proxy, real
// sticky-test-backend processes standing in for pods on 127.x.y.z loopback addresses, and the real
// sticky-operator binary. Each test case works in its own namespace with its own proxy and
// operator (the operator watches only that namespace).
//
// Two figures are measured and printed (never asserted): the time from `kubectl apply` of a
// route to the first sticky request it serves, and the time from a pod's (forced) deletion to
// the moment no new request reaches it.
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
#include "integration/operator/operator_stack.h"
#include "support/http_client.h"
#include "support/kube_cluster.h"
#include "support/paths.h"
#include "support/process.h"
#include "support/promtool.h"
#include "support/proxy_process.h"
#include "support/redis_server.h"

namespace sticky::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// -----------------------------------------------------------------------------------------------

TEST_CASE("operator: a route over ready pods serves sticky sessions - status and kubectl agree") {
  Stack s("op-basic");
  s.addPod("chat-0");
  s.addPod("chat-1");
  s.addPod("chat-2");

  auto applied_at = Clock::now();
  s.applyRoute(routeYaml("chat", "chat"));
  // The first request carrying the header that a pod answers: the route is live and the key
  // is now pinned.
  std::string first;
  bool served = waitFor([&] { return !(first = s.podFor("first-key")).empty(); }, kDeadline, 5ms);
  double apply_to_first_ms = millisSince(applied_at);
  REQUIRE_MESSAGE(served, "the route never served; operator log:\n" << Stack::tail(s.op().log()));
  CHECK(s.podFor("first-key") == first);
  std::printf(
      "MEASURE apply_to_first_sticky_request_ms=%.0f (kubectl apply of a StickyRoute to "
      "the first request answered by a pod, incl. the kubectl process)\n",
      apply_to_first_ms);
  MESSAGE("kubectl apply -> first sticky request: " << apply_to_first_ms << " ms");

  auto pinned = pin(s, keys("k", 30));
  std::set<std::string> used;
  for (const auto& [k, pod] : pinned) used.insert(pod);
  CHECK(used.size() == 3);  // LeastSessions spreads new keys over every pod
  for (int round = 0; round < 3; ++round) expectSticky(s, pinned);

  // Status: accepted, ready, three active endpoints, 31 live sessions (counters follow within
  // the status interval).
  s.waitForRoute(
      "chat",
      [](const json& r) {
        return Stack::condition(r, "Accepted") == "True" &&
               Stack::condition(r, "Ready") == "True" &&
               r["status"].value("readyEndpoints", -1) == 3 &&
               r["status"].value("drainingEndpoints", -1) == 0 &&
               r["status"].value("sessions", -1) == 31 &&
               r["status"].value("observedGeneration", -1) == r["metadata"]["generation"];
      },
      "route chat never became Ready with 3 endpoints and 31 sessions");
  json r = s.route("chat");
  CHECK(Stack::condition(r, "Accepted", "reason") == "Accepted");
  CHECK(Stack::condition(r, "Ready", "reason") == "Ready");
  REQUIRE(r["status"]["endpoints"].size() == 3);
  uint64_t per_endpoint_total = 0;
  for (const auto& e : r["status"]["endpoints"]) {
    CHECK(e["state"] == "Active");
    CHECK(e["ip"].get<std::string>().rfind("127.", 0) == 0);
    per_endpoint_total += e.value("sessions", 0);
  }
  CHECK(per_endpoint_total == 31);

  // kubectl get stickyroutes: HEADER TTL ENDPOINTS SESSIONS READY AGE with the true values.
  std::string table = s.kube().kubectlOrThrow({"get", "stickyroutes", "-n", s.ns()});
  auto lines = words(table.substr(0, table.find('\n')));
  CHECK(lines ==
        std::vector<std::string>{"NAME", "HEADER", "TTL", "ENDPOINTS", "SESSIONS", "READY", "AGE"});
  auto row = words(table.substr(table.find('\n') + 1));
  REQUIRE(row.size() == 7);
  CHECK(row[0] == "chat");
  CHECK(row[1] == "client-id");
  CHECK(row[2] == "30m");
  CHECK(row[3] == "3");
  CHECK(row[4] == "31");
  CHECK(row[5] == "True");

  // Status writes change the route object (and wake the reconciler) but not the desired config:
  // no push happens for them.
  size_t pushes = s.op().count("info config pushed");
  CHECK(pushes >= 1);
  pin(s, keys("more", 9));
  s.waitForRoute(
      "chat", [](const json& r) { return r["status"].value("sessions", -1) == 40; },
      "the session count never reached 40");
  CHECK(s.op().count("debug status written") >= 2);
  CHECK(s.op().count("info config pushed") == pushes);

  // Events: Normal Accepted and Ready.
  std::string events = s.kube().kubectlOrThrow(
      {"get", "events", "-n", s.ns(), "--field-selector", "involvedObject.name=chat", "-o",
       "jsonpath={range .items[*]}{.type}/{.reason}{\"\\n\"}{end}"});
  CHECK(events.find("Normal/Accepted") != std::string::npos);
  CHECK(events.find("Normal/Ready") != std::string::npos);
}

TEST_CASE("operator: with a shared table the status counts every proxy replica's sessions") {
  RedisServer redis;
  Stack s("op-shared", true, {"--redis-address", redis.address()});
  s.addPod("chat-0");
  s.addPod("chat-1");
  s.applyRoute(routeYaml("chat", "chat"));
  REQUIRE(waitFor([&] { return !s.podFor("first").empty(); }, kDeadline, 10ms));

  // A second replica of the proxy, serving the config the operator pushed to the first (in a
  // cluster every replica's operator pushes the same one), on the same Redis.
  auto config = s.proxy().admin().getConfig();
  REQUIRE(config);
  REQUIRE(config->has_value());
  const std::string config_path = s.dir().file("replica.json");
  writeFile(config_path, toJsonString(**config, 2));
  ProxyProcess replica({.log_path = s.dir().file("replica.log"),
                        .config_file = config_path,
                        .workers = 1,
                        .extra_args = {"--redis-address", redis.address()},
                        .start_timeout = kDeadline});
  REQUIRE(waitFor([&] { return replica.log().find("connected to Redis") != std::string::npos; },
                  kDeadline));

  // 10 sessions through the operator's proxy, 15 others only through the second replica.
  auto pinned = pin(s, keys("own", 9));
  HttpClient other("127.0.0.1", static_cast<uint16_t>(replica.port()), 5s);
  std::map<std::string, int> per_pod;
  for (const auto& [k, pod] : pinned) per_pod[pod]++;
  per_pod[s.podFor("first")]++;
  for (int i = 0; i < 15; ++i) {
    auto res = other.get("/", {{"client-id", "other" + std::to_string(i)}});
    REQUIRE(res.status == 200);
    per_pod[res.header("x-backend")]++;
  }

  s.waitForRoute(
      "chat",
      [](const json& r) { return r.contains("status") && r["status"].value("sessions", -1) == 25; },
      "the status never counted the 25 sessions of both replicas");
  json r = s.route("chat");
  std::map<std::string, int> status_per_pod;
  for (const auto& e : r["status"]["endpoints"]) status_per_pod[e["pod"]] = e.value("sessions", 0);
  CHECK(status_per_pod == per_pod);
}

TEST_CASE("operator: a force-deleted pod's sessions move - announced in both headers") {
  Stack s("op-delete");
  s.addPod("chat-0");
  s.addPod("chat-1");
  s.applyRoute(routeYaml("chat", "chat"));
  s.waitForProxyEndpoints("chat", {{"chat-0", "Active"}, {"chat-1", "Active"}});
  auto pinned = pin(s, keys("k", 20));
  std::vector<std::string> on_victim;
  for (const auto& [k, pod] : pinned) {
    if (pod == "chat-1") on_victim.push_back(k);
  }
  REQUIRE(!on_victim.empty());

  // The backend keeps running: only the operator's config change can stop traffic to it.
  auto deleted_at = Clock::now();
  s.kube().deletePod(s.ns(), "chat-1", /*force=*/true);
  size_t i = 0;
  HttpResponse moved;
  bool gone = waitFor(
      [&] {
        moved = s.send(on_victim[i++ % on_victim.size()]);
        return moved.status == 200 && moved.header("x-backend") != "chat-1";
      },
      kDeadline, 1ms);
  double delete_to_gone_ms = millisSince(deleted_at);
  REQUIRE_MESSAGE(gone, "requests kept reaching the deleted pod");
  std::printf(
      "MEASURE pod_delete_to_no_new_request_ms=%.0f (kubectl delete --force of a pod to "
      "the first request of its sessions answered elsewhere, incl. the kubectl "
      "process)\n",
      delete_to_gone_ms);
  MESSAGE("pod deletion -> no new request reaches it: " << delete_to_gone_ms << " ms");

  // The first request of a moved session tells both sides.
  CHECK(moved.header("x-backend") == "chat-0");
  CHECK(moved.json()["headers"].value("x-sticky-moved-from", "") == "chat-1");
  CHECK(moved.header("x-sticky-session-moved") != "");
  // From then on nothing reaches chat-1, and the moved sessions are sticky on their new pod.
  for (const auto& k : on_victim) CHECK(s.podFor(k) == "chat-0");
  for (const auto& k : on_victim) {
    HttpResponse again = s.send(k);
    CHECK(again.header("x-backend") == "chat-0");
    CHECK_FALSE(again.has("x-sticky-session-moved"));
  }
  for (const auto& [k, pod] : pinned) {
    if (pod == "chat-0") CHECK(s.podFor(k) == "chat-0");
  }
  s.waitForRoute(
      "chat",
      [](const json& r) {
        return r.contains("status") && r["status"].value("readyEndpoints", -1) == 1 &&
               r["status"]["endpoints"].size() == 1;
      },
      "status still lists the deleted pod");
}

TEST_CASE("operator: adding pods moves no existing session - new keys ramp onto the new pods") {
  Stack s("op-scale");
  s.addPod("chat-0");
  s.addPod("chat-1");
  s.applyRoute(routeYaml("chat", "chat"));
  s.waitForProxyEndpoints("chat", {{"chat-0", "Active"}, {"chat-1", "Active"}});
  auto pinned = pin(s, keys("old", 40));

  s.addPod("chat-2");
  s.addPod("chat-3");
  s.waitForProxyEndpoints(
      "chat",
      {{"chat-0", "Active"}, {"chat-1", "Active"}, {"chat-2", "Active"}, {"chat-3", "Active"}});
  expectSticky(s, pinned);
  // LeastSessions: the empty new pods take the new keys first.
  auto fresh = pin(s, keys("new", 20));
  for (const auto& [k, pod] : fresh) CHECK_MESSAGE((pod == "chat-2" || pod == "chat-3"), k);
  expectSticky(s, pinned);
  expectSticky(s, fresh);
}

TEST_CASE("operator: a terminating pod drains: its sessions stay - no new session lands on it") {
  Stack s("op-drain");
  s.addPod("chat-0");
  s.addPod("chat-1");
  s.applyRoute(routeYaml("chat", "chat"));
  s.waitForProxyEndpoints("chat", {{"chat-0", "Active"}, {"chat-1", "Active"}});
  auto pinned = pin(s, keys("k", 20));

  // No kubelet confirms the deletion: the pod stays Terminating (deletionTimestamp set).
  s.kube().deletePod(s.ns(), "chat-1", /*force=*/false);
  s.waitForProxyEndpoints("chat", {{"chat-0", "Active"}, {"chat-1", "Draining"}});
  expectSticky(s, pinned);
  auto fresh = pin(s, keys("new", 20));
  for (const auto& [k, pod] : fresh) CHECK_MESSAGE(pod == "chat-0", k);
  s.waitForRoute(
      "chat",
      [](const json& r) {
        if (!r.contains("status") || r["status"].value("drainingEndpoints", -1) != 1) return false;
        for (const auto& e : r["status"]["endpoints"]) {
          if (e["pod"] == "chat-1") return e["state"] == "Draining";
        }
        return false;
      },
      "status never showed chat-1 Draining");
  CHECK(s.route("chat")["status"].value("readyEndpoints", -1) == 1);

  // A pod turning NotReady while running drains the same way; Ready again makes it Active.
  s.kube().setPodReady(s.ns(), "chat-0", false);
  s.waitForProxyEndpoints("chat", {{"chat-0", "Draining"}, {"chat-1", "Draining"}});
  s.waitForRoute(
      "chat",
      [](const json& r) {
        return Stack::condition(r, "Ready") == "False" &&
               Stack::condition(r, "Ready", "reason") == "NoActiveEndpoints";
      },
      "Ready never went False with NoActiveEndpoints");
  expectSticky(s, pinned);
  s.kube().setPodReady(s.ns(), "chat-0", true);
  s.waitForProxyEndpoints("chat", {{"chat-0", "Active"}, {"chat-1", "Draining"}});
}

TEST_CASE("operator: invalid routes report Accepted=False with a reason - others keep serving") {
  Stack s("op-invalid");
  s.addPod("chat-0");
  s.addPod("chat-1");
  s.applyRoute(routeYaml("good", "chat", "  match:\n    hosts: [good.example]\n"));
  s.waitForProxyEndpoints("good", {{"chat-0", "Active"}, {"chat-1", "Active"}});
  auto pinned = pin(s, keys("k", 10), "good.example");

  // A selector the CRD schema lets through but Kubernetes would not: a bad label key.
  s.applyRoute(
      "apiVersion: kubesticky.io/v1alpha1\nkind: StickyRoute\nmetadata:\n  name: bad\n"
      "spec:\n  selector:\n    matchLabels:\n      \"not a key\": x\n  port: http\n"
      "  header: client-id\n  match:\n    hosts: [bad.example]\n");
  s.waitForRoute(
      "bad",
      [](const json& r) {
        return Stack::condition(r, "Accepted") == "False" &&
               Stack::condition(r, "Accepted", "reason") == "InvalidSelector" &&
               Stack::condition(r, "Ready") == "False";
      },
      "route bad never became Accepted=False/InvalidSelector");
  CHECK(Stack::condition(s.route("bad"), "Accepted", "message").find("not a key") !=
        std::string::npos);
  bool warned = waitFor(
      [&] {
        return s.kube()
                   .kubectlOrThrow({"get", "events", "-n", s.ns(), "--field-selector",
                                    "involvedObject.name=bad,type=Warning,reason=InvalidSelector",
                                    "-o", "name"})
                   .size() > 0;
      },
      kDeadline, 200ms);
  CHECK_MESSAGE(warned, "no Warning event InvalidSelector for route bad");
  CHECK(s.send("x", "bad.example").status == 404);  // never valid: not served
  expectSticky(s, pinned, "good.example");

  // A route claiming the same hosts later: ConflictingMatch, the older keeps them.
  s.applyRoute(routeYaml("copycat", "chat", "  match:\n    hosts: [good.example]\n"));
  s.waitForRoute(
      "copycat",
      [](const json& r) { return Stack::condition(r, "Accepted", "reason") == "ConflictingMatch"; },
      "route copycat never became ConflictingMatch");
  CHECK(Stack::condition(s.route("copycat"), "Accepted", "message").find("good") !=
        std::string::npos);
  expectSticky(s, pinned, "good.example");

  // Breaking a served route keeps its last good spec serving: a port name no pod has.
  s.applyRoute(routeYaml("good", "chat", "  match:\n    hosts: [good.example]\n", "grpc"));
  s.waitForRoute(
      "good",
      [](const json& r) {
        return Stack::condition(r, "Accepted", "reason") == "PortNotFound" &&
               Stack::condition(r, "Ready", "reason") == "NotAccepted" &&
               r["status"].value("observedGeneration", -1) == 2;
      },
      "route good never became PortNotFound");
  expectSticky(s, pinned, "good.example");
  // Pods still come and go for the last good spec.
  s.addPod("chat-2");
  s.waitForProxyEndpoints("good",
                          {{"chat-0", "Active"}, {"chat-1", "Active"}, {"chat-2", "Active"}});
  // Fixed again: accepted, generation 3.
  s.applyRoute(routeYaml("good", "chat", "  match:\n    hosts: [good.example]\n"));
  s.waitForRoute(
      "good",
      [](const json& r) {
        return Stack::condition(r, "Accepted") == "True" &&
               Stack::condition(r, "Ready") == "True" &&
               r["status"].value("observedGeneration", -1) == 3;
      },
      "route good never recovered");
  expectSticky(s, pinned, "good.example");
}

TEST_CASE("operator: the API server restarts - the operator resumes and nothing is lost") {
  Stack s("op-apirestart", true, {}, KubeCluster::ownCluster());  // it restarts the API server
  s.addPod("chat-0");
  s.addPod("chat-1");
  s.applyRoute(routeYaml("chat", "chat"));
  s.waitForProxyEndpoints("chat", {{"chat-0", "Active"}, {"chat-1", "Active"}});
  auto pinned = pin(s, keys("k", 20));

  s.kube().restartApiServer();
  // Sessions kept serving all along; the proxy config is unchanged.
  expectSticky(s, pinned);
  CHECK(s.proxyEndpoints("chat") ==
        std::map<std::string, std::string>{{"chat-0", "Active"}, {"chat-1", "Active"}});

  // Changes after the restart arrive through re-established watches.
  s.addPod("chat-2");
  s.kube().deletePod(s.ns(), "chat-0", /*force=*/true);
  s.waitForProxyEndpoints("chat", {{"chat-1", "Active"}, {"chat-2", "Active"}});
  for (const auto& [k, pod] : pinned) {
    if (pod == "chat-1") CHECK(s.podFor(k) == "chat-1");
  }
  s.waitForRoute(
      "chat",
      [](const json& r) {
        return Stack::condition(r, "Ready") == "True" &&
               r["status"].value("readyEndpoints", -1) == 2 &&
               r["status"]["endpoints"][0]["pod"] == "chat-1" &&
               r["status"]["endpoints"][1]["pod"] == "chat-2";
      },
      "status did not follow the changes made after the API server restart");
  CHECK(s.op().process().running());
}

TEST_CASE("operator: a restarted proxy gets its config pushed again within seconds") {
  Stack s("op-proxyrestart");
  s.addPod("chat-0");
  s.applyRoute(routeYaml("chat", "chat"));
  s.waitForProxyEndpoints("chat", {{"chat-0", "Active"}});
  REQUIRE(s.podFor("k") == "chat-0");
  const size_t pushes_before = s.op().count("info config pushed");

  s.proxy().kill();
  s.waitForRoute(
      "chat",
      [](const json& r) { return Stack::condition(r, "Ready", "reason") == "ProxyUnavailable"; },
      "Ready never reported the proxy down");
  auto restarted_at = Clock::now();
  s.proxy().start();
  bool back = waitFor([&] { return s.podFor("k") == "chat-0"; }, kDeadline, 10ms);
  double repush_ms = millisSince(restarted_at);
  REQUIRE_MESSAGE(back, "the restarted proxy never got its config; operator log:\n"
                            << Stack::tail(s.op().log()));
  std::printf("MEASURE proxy_restart_to_config_repushed_ms=%.0f\n", repush_ms);
  // A push after the restart: logged with why="proxy has no config", or "proxy unreachable"
  // when the operator's stats call came just before the proxy's admin socket opened. The
  // operator logs it once the proxy has answered, which can be just after the proxy serves.
  CHECK(waitFor([&] { return s.op().count("info config pushed") > pushes_before; }, 5s, 10ms));
  s.waitForRoute(
      "chat", [](const json& r) { return Stack::condition(r, "Ready") == "True"; },
      "Ready never came back after the proxy restart");
}

// A scrape as sample -> value ("name{labels}" as written); comments skipped.
std::map<std::string, double> scrape(HttpClient& client) {
  HttpResponse r = client.get("/metrics");
  REQUIRE(r.status == 200);
  REQUIRE(r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  std::map<std::string, double> out;
  std::istringstream in(r.body);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    REQUIRE_MESSAGE(space != std::string::npos, "malformed line: " << line);
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

double valueOf(const std::map<std::string, double>& samples, const std::string& key) {
  auto it = samples.find(key);
  return it == samples.end() ? -1 : it->second;
}

TEST_CASE("operator: /metrics, /healthz and /readyz - reconcile, API client and leader series") {
  KubeCluster& kube = clusterWithCrd();
  Stack s("op-metrics", /*start_operator=*/false);
  OperatorProcess op(kube, s.dir(), "op-metrics", s.ns(), s.proxy().socket(),
                     {"--leader-elect", "--lease-namespace", s.ns(), "--lease-duration", "4s",
                      "--renew-deadline", "3s", "--retry-period", "500ms"});
  uint16_t port = 0;
  REQUIRE_MESSAGE(waitFor([&] { return (port = op.metricsPort()) != 0; }, kDeadline, 20ms),
                  "no metrics port in the log:\n"
                      << op.log());
  HttpClient client("127.0.0.1", port, 5s);
  CHECK(client.get("/healthz").status == 200);
  // Ready once the caches synced, whether or not this replica leads yet.
  REQUIRE_MESSAGE(waitFor([&] { return client.get("/readyz").status == 200; }, kDeadline, 20ms),
                  "never ready; log:\n"
                      << Stack::tail(op.log()));
  CHECK(client.get("/readyz").body == "ready\n");
  CHECK(client.get("/nope").status == 404);
  CHECK(client.request("POST", "/metrics").status == 405);

  s.addPod("chat-0");
  s.applyRoute(routeYaml("chat", "chat"));
  s.waitForRoute(
      "chat", [](const json& r) { return Stack::condition(r, "Ready") == "True"; },
      "the route never became Ready");
  REQUIRE(waitFor([&] { return !s.podFor("k").empty(); }, kDeadline, 20ms));

  const std::string c = R"({controller="stickyroute")";
  std::map<std::string, double> first;
  // The pass that wrote Ready may still be running: wait until it is counted.
  REQUIRE(waitFor(
      [&] {
        first = scrape(client);
        return valueOf(first, "sticky_operator_status_writes_total{result=\"success\"}") >= 1 &&
               valueOf(first, "leader_election_master_status{name=\"sticky-operator\"}") == 1;
      },
      kDeadline, 100ms));
  CHECK(valueOf(first, "controller_runtime_reconcile_total" + c + R"(,result="success"})") >= 1);
  CHECK(valueOf(first, "controller_runtime_reconcile_total" + c + R"(,result="requeue"})") == 0);
  CHECK(valueOf(first, "controller_runtime_reconcile_errors_total" + c + "}") >= 0);
  CHECK(valueOf(first, "controller_runtime_reconcile_time_seconds_count" + c + "}") >= 1);
  CHECK(valueOf(first, "controller_runtime_reconcile_time_seconds_bucket" + c + R"(,le="+Inf"})") ==
        valueOf(first, "controller_runtime_reconcile_time_seconds_count" + c + "}"));
  CHECK(valueOf(first,
                "controller_runtime_reconcile_time_seconds_bucket" + c + R"(,le="0.005"})") >= 0);
  CHECK(valueOf(first, "sticky_operator_config_pushes_total{result=\"success\"}") >= 1);
  CHECK(valueOf(first, "sticky_operator_proxy_config_in_sync") == 1);
  CHECK(valueOf(first, "sticky_operator_relists_total{resource=\"pods\"}") == 0);
  CHECK(valueOf(first, "sticky_operator_watch_restarts_total{resource=\"stickyroutes\"}") >= 0);

  // The API client's requests, by code and method, against the test server's host:port.
  std::string host = kube.kubectlOrThrow(
      {"config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"});
  host = host.substr(host.find("://") + 3);
  CHECK(valueOf(first, R"(rest_client_requests_total{code="200",method="GET",host=")" + host +
                           "\"}") >= 2);  // lists and watches
  CHECK(valueOf(first, R"(rest_client_requests_total{code="200",method="PATCH",host=")" + host +
                           "\"}") >= 1);  // status
  CHECK(valueOf(first, "process_resident_memory_bytes") > 0);
  CHECK(valueOf(first, "process_open_fds") > 0);
  bool build_info = false;
  for (const auto& [key, value] : first) {
    if (key.rfind("sticky_build_info{version=\"0.2.0\"", 0) == 0) build_info = value == 1;
  }
  CHECK(build_info);

  // A change to the cluster: more passes, more requests.
  s.addPod("chat-1");
  s.waitForRoute(
      "chat", [](const json& r) { return r["status"].value("readyEndpoints", -1) == 2; },
      "the new endpoint never reached status");
  std::map<std::string, double> second;
  REQUIRE(waitFor(
      [&] {
        second = scrape(client);
        return valueOf(second, "sticky_operator_status_writes_total{result=\"success\"}") >
               valueOf(first, "sticky_operator_status_writes_total{result=\"success\"}");
      },
      kDeadline, 100ms));
  CHECK(valueOf(second, "controller_runtime_reconcile_total" + c + R"(,result="success"})") >
        valueOf(first, "controller_runtime_reconcile_total" + c + R"(,result="success"})"));
  CHECK(valueOf(second, "sticky_operator_config_pushes_total{result=\"success\"}") >
        valueOf(first, "sticky_operator_config_pushes_total{result=\"success\"}"));

  // The real sticky-proxy process has the build and process families too.
  HttpClient proxy_metrics("127.0.0.1", s.proxy().metricsPort(), 5s);
  std::map<std::string, double> proxy_samples = scrape(proxy_metrics);
  bool proxy_build_info = false;
  for (const auto& [key, value] : proxy_samples) {
    if (key.rfind("sticky_build_info{version=\"0.2.0\"", 0) == 0) proxy_build_info = value == 1;
  }
  CHECK(proxy_build_info);
  CHECK(valueOf(proxy_samples, "process_resident_memory_bytes") > 0);
  CHECK(valueOf(proxy_samples, "process_start_time_seconds") > 1.6e9);
  CHECK(valueOf(proxy_samples, "process_cpu_seconds_total") >= 0);

  // promtool accepts both binaries' scrapes (when installed).
  for (auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"operator", client.get("/metrics").body},
           {"proxy", proxy_metrics.get("/metrics").body}}) {
    INFO(name << " scrape:\n" << text);
    auto problems = promtoolProblems(s.dir(), name, text);
    if (!problems) {
      MESSAGE("promtool is not installed; the scrape's syntax was not checked by it");
      break;
    }
    CHECK_MESSAGE(problems->empty(), *problems);
  }

  // The operator drops leadership on SIGTERM and stops serving the port.
  op.process().signal(SIGTERM);
  CHECK(op.process().wait(20s) == 0);
}

TEST_CASE("operator: SIGTERM stops the operator cleanly") {
  Stack s("op-sigterm");
  s.applyRoute(routeYaml("chat", "chat"));
  bool pushed = waitFor([&] { return s.op().count("config pushed") >= 1; }, kDeadline, 50ms);
  REQUIRE(pushed);
  s.op().process().signal(SIGTERM);
  int status = s.op().process().wait(20s);
  // On failure the operator's own words (and a sanitizer's report, which goes to the same log).
  INFO("operator log:\n" << s.op().process().log());
  CHECK(status == 0);
  CHECK(s.op().count("operator stopped") == 1);
}

TEST_CASE("operator: two replicas - one leader writes status - a killed leader is replaced") {
  KubeCluster& kube = clusterWithCrd();
  Stack s("op-leader", /*start_operator=*/false);
  TempDir dir;
  PodProxy proxy_b(dir, "proxy-b");
  std::vector<std::string> election = {"--leader-elect",
                                       "--lease-namespace",
                                       s.ns(),
                                       "--lease-name",
                                       "sticky-operator",
                                       "--lease-duration",
                                       "4s",
                                       "--renew-deadline",
                                       "3s",
                                       "--retry-period",
                                       "500ms"};
  auto op_a = std::make_unique<OperatorProcess>(kube, s.dir(), "op-a", s.ns(), s.proxy().socket(),
                                                election);
  auto op_b =
      std::make_unique<OperatorProcess>(kube, dir, "op-b", s.ns(), proxy_b.socket(), election);
  s.addPod("chat-0");
  s.applyRoute(routeYaml("chat", "chat"));

  auto holder = [&] {
    auto r = kube.kubectl(
        {"get", "lease", "sticky-operator", "-n", s.ns(), "-o", "jsonpath={.spec.holderIdentity}"});
    return r.ok() ? r.out : std::string();
  };
  std::string leader;
  REQUIRE(waitFor([&] { return !(leader = holder()).empty(); }, kDeadline, 100ms));
  OperatorProcess* lead = leader == "op-a" ? op_a.get() : op_b.get();
  OperatorProcess* follow = leader == "op-a" ? op_b.get() : op_a.get();

  s.waitForRoute(
      "chat",
      [](const json& r) {
        return Stack::condition(r, "Ready") == "True" &&
               r["status"].value("readyEndpoints", -1) == 1;
      },
      "the leader never wrote Ready status");
  // Both replicas push to their own proxy: both proxies serve the route.
  HttpClient via_b("127.0.0.1", static_cast<uint16_t>(proxy_b.port()), 5s);
  REQUIRE(waitFor(
      [&] {
        return via_b.get("/", {{"client-id", "b"}}).status == 200;
      },
      kDeadline, 50ms));
  CHECK(s.podFor("a") == "chat-0");

  s.addPod("chat-1");
  s.waitForRoute(
      "chat", [](const json& r) { return r["status"].value("readyEndpoints", -1) == 2; },
      "the leader never wrote the new endpoint");
  CHECK(lead->count("became leader") == 1);
  CHECK(lead->count("debug status written") >= 1);
  CHECK(follow->count("became leader") == 0);
  CHECK(follow->count("debug status written") == 0);
  CHECK(follow->count("config pushed") >= 1);
  std::string reporters = kube.kubectlOrThrow(
      {"get", "events", "-n", s.ns(), "-o", "jsonpath={.items[*].reportingInstance}"});
  REQUIRE_FALSE(words(reporters).empty());  // Accepted, Ready at least
  for (const auto& who : words(reporters)) CHECK(who == leader);

  // Kill the leader without a chance to release: the other takes over once the lease expires.
  lead->process().signal(SIGKILL);
  lead->process().wait(10s);
  std::string next;
  REQUIRE_MESSAGE(
      waitFor([&] { return (next = holder()) != leader && !next.empty(); }, kDeadline, 100ms),
      "nobody took over the lease");
  CHECK(next != leader);
  CHECK(follow->count("became leader") == 1);
  s.addPod("chat-2");
  s.waitForRoute(
      "chat", [](const json& r) { return r["status"].value("readyEndpoints", -1) == 3; },
      "the new leader never wrote status");
  CHECK(follow->count("debug status written") >= 1);
  CHECK(kube.kubectlOrThrow({"get", "lease", "sticky-operator", "-n", s.ns(), "-o",
                             "jsonpath={.spec.leaseTransitions}"}) == "1");

  // A clean stop releases the lease at once.
  follow->process().signal(SIGTERM);
  CHECK(follow->process().wait(20s) == 0);
  CHECK(holder().empty());
}

}  // namespace
}  // namespace sticky::test
