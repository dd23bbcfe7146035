// The StickyRoute CRD (crds/stickyroutes.kubesticky.io.yaml) on a real kube-apiserver: it is
// established, accepts the samples, rejects invalid routes naming the field, fills in defaults,
// has a status subresource, and `kubectl get sr` shows the printer columns.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/kube_cluster.h"
#include "support/paths.h"
#include "support/process.h"

namespace sticky::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kCrdName = "stickyroutes.kubesticky.io";
const std::string kCrdPath = sticky::test::sourceDir() + "/crds/stickyroutes.kubesticky.io.yaml";
const std::string kSamplesDir = sticky::test::sourceDir() + "/crds/samples";

// Applies the CRD and waits until it is Established and `kubectl get sr` resolves the resource.
KubeCluster& clusterWithCrd() {
  KubeCluster& kube = KubeCluster::shared();
  kube.kubectlOrThrow({"apply", "-f", kCrdPath});
  bool established = waitFor(
      [&] {
        CommandResult r =
            kube.kubectl({"get", "crd", kCrdName, "-o",
                          R"(jsonpath={.status.conditions[?(@.type=="Established")].status})"});
        return r.ok() && r.out == "True";
      },
      60s, 100ms);
  REQUIRE_MESSAGE(established, "CRD " << kCrdName << " did not become Established");
  bool served = waitFor([&] { return kube.kubectl({"get", "sr", "-A"}).ok(); }, 60s, 100ms);
  REQUIRE_MESSAGE(served, "kubectl get sr fails: " << kube.kubectl({"get", "sr", "-A"}).describe());
  return kube;
}

std::string routeYaml(const std::string& name, const std::string& spec_body) {
  return "apiVersion: kubesticky.io/v1alpha1\nkind: StickyRoute\nmetadata:\n  name: " + name +
         "\nspec:\n" + spec_body;
}

// Server-side judgement only: kubectl's own schema validation is switched off.
CommandResult createRoute(const KubeCluster& kube, const std::string& ns, const std::string& yaml) {
  return kube.kubectl({"create", "--validate=false", "-n", ns, "-f", "-"}, yaml);
}

nlohmann::json getJson(const KubeCluster& kube, const std::string& ns, const std::string& name) {
  return nlohmann::json::parse(kube.kubectlOrThrow({"get", "sr", name, "-n", ns, "-o", "json"}));
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::vector<std::string> lines(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) out.push_back(l);
  }
  return out;
}

}  // namespace

TEST_CASE("the StickyRoute CRD is established with its names") {
  KubeCluster& kube = clusterWithCrd();
  auto crd = nlohmann::json::parse(kube.kubectlOrThrow({"get", "crd", kCrdName, "-o", "json"}));
  CHECK(crd["spec"]["scope"] == "Namespaced");
  CHECK(crd["status"]["acceptedNames"]["kind"] == "StickyRoute");
  CHECK(crd["status"]["acceptedNames"]["shortNames"] == nlohmann::json::array({"sr"}));
  // Its own category (`kubectl get kube-sticky`), and kept out of `all`: `kubectl get all` must
  // not list routes.
  CHECK(crd["status"]["acceptedNames"]["categories"] == nlohmann::json::array({"kube-sticky"}));
  std::string resources = kube.kubectlOrThrow({"api-resources", "--api-group=kubesticky.io"});
  CHECK(resources.find("stickyroutes") != std::string::npos);
  CHECK(resources.find("StickyRoute") != std::string::npos);
}

TEST_CASE("every sample route is accepted") {
  KubeCluster& kube = clusterWithCrd();
  const std::string ns = "crd-samples";
  kube.createNamespace(ns);
  int samples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kSamplesDir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++samples;
    CAPTURE(entry.path().string());
    // Server-side validation only, so the API server is what judges the sample.
    CommandResult applied =
        kube.kubectl({"apply", "--validate=false", "-n", ns, "-f", entry.path().string()});
    REQUIRE_MESSAGE(applied.ok(), applied.describe());
    auto sample = nlohmann::json::parse(kube.kubectlOrThrow(
        {"create", "--dry-run=client", "-f", entry.path().string(), "-o", "json"}));
    std::string name = sample["metadata"]["name"];
    auto stored = getJson(kube, ns, name);
    // What the sample says is what is stored (defaults only add fields).
    for (const auto& [field, value] : sample["spec"].items()) {
      CAPTURE(field);
      CHECK(stored["spec"][field] == value);
    }
  }
  CHECK(samples >= 3);
}

TEST_CASE("invalid routes are rejected with an error naming the field") {
  KubeCluster& kube = clusterWithCrd();
  const std::string ns = "crd-invalid";
  kube.createNamespace(ns);
  const std::string selector = "  selector: {matchLabels: {app: chat}}\n";
  struct Case {
    std::string what;
    std::string spec;
    std::string field;  // must appear in the server's error (1.20 names list items without index)
    std::string why;    // and so must this part of the reason
  };
  const std::vector<Case> cases = {
      {"missing header", selector + "  port: 8080\n", "spec.header", "Required value"},
      {"missing selector", "  port: 8080\n  header: client-id\n", "spec.selector", "Required"},
      {"missing port", selector + "  header: client-id\n", "spec.port", "Required value"},
      {"header with a space", selector + "  port: 8080\n  header: client id\n", "spec.header",
       "should match"},
      {"header with a colon", selector + "  port: 8080\n  header: 'client-id:'\n", "spec.header",
       "should match"},
      {"ttl in words", selector + "  port: 8080\n  header: client-id\n  ttl: 30 minutes\n",
       "spec.ttl", "should match"},
      {"ttl without unit", selector + "  port: 8080\n  header: client-id\n  ttl: '30'\n",
       "spec.ttl", "should match"},
      {"zero ttl", selector + "  port: 8080\n  header: client-id\n  ttl: 0s\n", "spec.ttl",
       "should match"},
      {"unknown placement", selector + "  port: 8080\n  header: client-id\n  placement: Sticky\n",
       "spec.placement", "Unsupported value"},
      {"unknown onMissingKey",
       selector + "  port: 8080\n  header: client-id\n  onMissingKey: Drop\n", "spec.onMissingKey",
       "Unsupported value"},
      {"unknown onEndpointLost",
       selector + "  port: 8080\n  header: client-id\n  onEndpointLost: Retry\n",
       "spec.onEndpointLost", "Unsupported value"},
      {"maxSessions 0", selector + "  port: 8080\n  header: client-id\n  maxSessions: 0\n",
       "spec.maxSessions", "greater than or equal to 1"},
      {"port 0", selector + "  port: 0\n  header: client-id\n", "spec.port",
       "greater than or equal to 1"},
      {"port 70000", selector + "  port: 70000\n  header: client-id\n", "spec.port",
       "less than or equal to 65535"},
      {"port name with upper case", selector + "  port: HTTP\n  header: client-id\n", "spec.port",
       "should match"},
      {"port name of digits only", selector + "  port: '8080'\n  header: client-id\n", "spec.port",
       "should match"},
      {"In without values",
       "  selector: {matchExpressions: [{key: app, operator: In}]}\n  port: 8080\n"
       "  header: client-id\n",
       "spec.selector.matchExpressions.values", "Required value"},
      {"NotIn with no values",
       "  selector: {matchExpressions: [{key: app, operator: NotIn, values: []}]}\n  port: 8080\n"
       "  header: client-id\n",
       "spec.selector.matchExpressions.values", "at least 1 items"},
      {"Exists with values",
       "  selector: {matchExpressions: [{key: app, operator: Exists, values: [x]}]}\n"
       "  port: 8080\n  header: client-id\n",
       "spec.selector.matchExpressions.values", "at most 0 items"},
      {"unknown selector operator",
       "  selector: {matchExpressions: [{key: app, operator: Matches, values: [x]}]}\n"
       "  port: 8080\n  header: client-id\n",
       "spec.selector.matchExpressions.operator", "Unsupported value"},
      {"path prefix without slash",
       selector + "  port: 8080\n  header: client-id\n  match: {pathPrefix: api}\n",
       "spec.match.pathPrefix", "should match"},
      {"host with an underscore",
       selector + "  port: 8080\n  header: client-id\n  match: {hosts: [bad_host.example.com]}\n",
       "spec.match.hosts", "should match"},
  };
  int index = 0;
  for (const auto& c : cases) {
    CAPTURE(c.what);
    std::string name = "invalid-" + std::to_string(index++);
    CommandResult r = createRoute(kube, ns, routeYaml(name, c.spec));
    CHECK_MESSAGE(!r.ok(), "accepted: " << c.spec);
    CHECK_MESSAGE(r.err.find(c.field) != std::string::npos, "error: " << r.err);
    CHECK_MESSAGE(r.err.find(c.why) != std::string::npos, "error: " << r.err);
    CommandResult get = kube.kubectl({"get", "sr", name, "-n", ns});
    CHECK_MESSAGE(!get.ok(), "route " << name << " exists although it was rejected");
  }
}

TEST_CASE("valid edge cases are accepted") {
  KubeCluster& kube = clusterWithCrd();
  const std::string ns = "crd-edge";
  kube.createNamespace(ns);
  const std::string selector = "  selector: {matchLabels: {app: chat}}\n";
  const std::vector<std::string> specs = {
      selector + "  port: 1\n  header: x\n  ttl: 500ms\n",
      selector + "  port: 65535\n  header: \"!#$%&'*+-.^_`|~09AZaz\"\n  ttl: 1h30m15s\n",
      selector + "  port: h2c-1\n  header: Client-ID\n  ttl: 0h10m\n",
      selector + "  port: 8080\n  header: client-id\n  maxSessions: 1\n",
      "  selector: {}\n  port: 8080\n  header: client-id\n",
      "  selector: {matchExpressions: [{key: app, operator: NotIn, values: [a, b]}, "
      "{key: tier, operator: Exists}, {key: old, operator: DoesNotExist, values: []}]}\n"
      "  port: 8080\n  header: client-id\n",
      selector +
          "  port: 8080\n  header: client-id\n  match: {hosts: ['*.example.com', "
          "example.com, 10.0.0.1], pathPrefix: /api/v1/}\n",
  };
  for (size_t i = 0; i < specs.size(); ++i) {
    CAPTURE(specs[i]);
    std::string name = "edge-" + std::to_string(i);
    kube.kubectl({"delete", "sr", name, "-n", ns, "--ignore-not-found"});
    CommandResult r = createRoute(kube, ns, routeYaml(name, specs[i]));
    CHECK_MESSAGE(r.ok(), r.describe());
  }
}

TEST_CASE("defaults are filled in and unknown fields are pruned") {
  KubeCluster& kube = clusterWithCrd();
  const std::string ns = "crd-defaults";
  kube.createNamespace(ns);
  kube.kubectl({"delete", "sr", "minimal", "-n", ns, "--ignore-not-found"});
  CommandResult r = createRoute(
      kube, ns,
      routeYaml("minimal",
                "  selector: {matchLabels: {app: chat}}\n  port: 8080\n  header: client-id\n"
                "  notAField: 1\n"));
  REQUIRE_MESSAGE(r.ok(), r.describe());
  auto spec = getJson(kube, ns, "minimal")["spec"];
  CHECK(spec["ttl"] == "30m");
  CHECK(spec["match"]["pathPrefix"] == "/");
  CHECK_FALSE(spec["match"].contains("hosts"));
  CHECK(spec["maxSessions"] == 100000);
  CHECK(spec["placement"] == "LeastSessions");
  CHECK(spec["onMissingKey"] == "Balance");
  CHECK(spec["onEndpointLost"] == "Reassign");
  CHECK(spec["port"] == 8080);
  CHECK(spec["header"] == "client-id");
  CHECK_FALSE(spec.contains("notAField"));

  // A match given without pathPrefix still gets "/".
  kube.kubectl({"delete", "sr", "hosts-only", "-n", ns, "--ignore-not-found"});
  r = createRoute(kube, ns,
                  routeYaml("hosts-only",
                            "  selector: {matchLabels: {app: chat}}\n  port: web\n"
                            "  header: client-id\n  match: {hosts: [chat.example.com]}\n"));
  REQUIRE_MESSAGE(r.ok(), r.describe());
  spec = getJson(kube, ns, "hosts-only")["spec"];
  CHECK(spec["match"]["pathPrefix"] == "/");
  CHECK(spec["match"]["hosts"] == nlohmann::json::array({"chat.example.com"}));
  CHECK(spec["port"] == "web");
}

TEST_CASE("status is a subresource and kubectl get sr prints the printer columns") {
  KubeCluster& kube = clusterWithCrd();
  const std::string ns = "crd-columns";
  kube.createNamespace(ns);
  kube.kubectl({"delete", "sr", "chat", "-n", ns, "--ignore-not-found"});
  REQUIRE(createRoute(kube, ns,
                      routeYaml("chat",
                                "  selector: {matchLabels: {app: chat}}\n  port: 8080\n"
                                "  header: client-id\n  ttl: 45m\n"))
              .ok());

  // Before any status: the header row and the spec columns.
  auto rows = lines(kube.kubectlOrThrow({"get", "sr", "-n", ns}));
  REQUIRE(rows.size() == 2);
  CHECK(words(rows[0]) ==
        std::vector<std::string>{"NAME", "HEADER", "TTL", "ENDPOINTS", "SESSIONS", "READY", "AGE"});
  auto row = words(rows[1]);
  REQUIRE(row.size() == 4);  // ENDPOINTS, SESSIONS, READY are empty until status is written
  CHECK(row[0] == "chat");
  CHECK(row[1] == "client-id");
  CHECK(row[2] == "45m");

  nlohmann::json status = {
      {"status",
       {{"observedGeneration", 1},
        {"readyEndpoints", 3},
        {"drainingEndpoints", 1},
        {"sessions", 42},
        {"conditions",
         {{{"type", "Accepted"},
           {"status", "True"},
           {"reason", "Valid"},
           {"message", "route accepted"},
           {"lastTransitionTime", "2026-01-01T00:00:00Z"},
           {"observedGeneration", 1}},
          {{"type", "Ready"},
           {"status", "True"},
           {"reason", "Serving"},
           {"message", "the proxy serves this route"},
           {"lastTransitionTime", "2026-01-01T00:00:00Z"},
           {"observedGeneration", 1}}}},
        {"endpoints",
         {{{"pod", "chat-0"}, {"ip", "127.0.0.2"}, {"state", "Active"}, {"sessions", 40}},
          {{"pod", "chat-1"}, {"ip", "127.0.0.3"}, {"state", "Draining"}, {"sessions", 2}}}}}}};
  kube.kubectlOrThrow({"patch", "sr", "chat", "-n", ns, "--subresource=status", "--type=merge",
                       "-p", status.dump()});

  rows = lines(kube.kubectlOrThrow({"get", "sr", "-n", ns}));
  REQUIRE(rows.size() == 2);
  row = words(rows[1]);
  REQUIRE(row.size() == 7);
  CHECK(row == std::vector<std::string>{"chat", "client-id", "45m", "3", "42", "True", row[6]});

  // Status written through the main resource is ignored: the status subresource owns it.
  kube.kubectlOrThrow(
      {"patch", "sr", "chat", "-n", ns, "--type=merge", "-p", R"({"status":{"sessions":7}})"});
  CHECK(getJson(kube, ns, "chat")["status"]["sessions"] == 42);
  // And a spec change through the status subresource is ignored too.
  kube.kubectlOrThrow({"patch", "sr", "chat", "-n", ns, "--subresource=status", "--type=merge",
                       "-p", R"({"spec":{"ttl":"1m"}})"});
  CHECK(getJson(kube, ns, "chat")["spec"]["ttl"] == "45m");

  // The status schema is enforced too.
  CommandResult bad = kube.kubectl(
      {"patch", "sr", "chat", "-n", ns, "--subresource=status", "--type=merge", "-p",
       R"({"status":{"endpoints":[{"pod":"chat-0","ip":"127.0.0.2","state":"Gone"}]}})"});
  CHECK_FALSE(bad.ok());
  CHECK_MESSAGE(bad.err.find("status.endpoints.state") != std::string::npos, bad.err);
}

}  // namespace sticky::test
