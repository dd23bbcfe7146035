#include "controller/desired_config.h"

#include <doctest/doctest.h>

namespace sticky::op {
namespace {

using nlohmann::json;
using sticky::EndpointState;

json route(const std::string& ns, const std::string& name, json spec,
           const std::string& created = "2026-01-01T00:00:00Z", int64_t generation = 1) {
  return {{"apiVersion", "kubesticky.io/v1alpha1"},
          {"kind", "StickyRoute"},
          {"metadata",
           {{"namespace", ns},
            {"name", name},
            {"uid", "uid-" + ns + "-" + name},
            {"generation", generation},
            {"creationTimestamp", created}}},
          {"spec", std::move(spec)}};
}

json chatSpec() {
  return {
      {"selector", {{"matchLabels", {{"app", "chat"}}}}}, {"port", 8080}, {"header", "Client-ID"}};
}

json pod(const std::string& ns, const std::string& name, json labels, const std::string& ip,
         bool ready = true, const std::string& phase = "Running") {
  json p = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"namespace", ns}, {"name", name}, {"labels", std::move(labels)}}},
      {"spec",
       {{"containers",
         json::array({{{"name", "app"},
                       {"ports", json::array({{{"name", "http"}, {"containerPort", 9000}}})}}})}}},
      {"status", {{"phase", phase}}}};
  if (!ip.empty()) p["status"]["podIP"] = ip;
  p["status"]["conditions"] =
      json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}});
  return p;
}

json chatPod(const std::string& name, const std::string& ip, bool ready = true) {
  return pod("shop", name, {{"app", "chat"}}, ip, ready);
}

// The cluster as the API server returns it; compute() decodes it as clusterSnapshotOf does.
struct Cluster {
  std::vector<json> routes;
  std::vector<json> pods;
};

DesiredState compute(const Cluster& s, const LastGoodRoutes& previous = {}) {
  ClusterSnapshot snapshot;
  for (const auto& r : s.routes) snapshot.routes.push_back(decodeStickyRoute(r));
  for (const auto& p : s.pods) snapshot.pods.push_back(decodePod(p));
  return computeDesiredState(snapshot, previous, ProxySettings{});
}

TEST_CASE("one route - ready pods become Active endpoints sorted by pod name") {
  Cluster s;
  s.routes = {route("shop", "chat", chatSpec())};
  s.pods = {chatPod("chat-1", "10.0.0.6"), chatPod("chat-0", "10.0.0.5"),
            pod("shop", "other", {{"app", "other"}}, "10.0.0.9"),
            pod("elsewhere", "chat-x", {{"app", "chat"}}, "10.0.1.1")};
  auto d = compute(s);
  REQUIRE(d.config.routes.size() == 1);
  const auto& r = d.config.routes[0];
  CHECK(r.name == "shop/chat");
  CHECK(r.header == "client-id");
  CHECK(r.ttl == std::chrono::minutes(30));
  CHECK(r.max_sessions == 100000);
  CHECK((r.placement == Placement::LeastSessions));
  CHECK((r.on_missing_key == OnMissingKey::Balance));
  CHECK((r.on_endpoint_lost == OnEndpointLost::Reassign));
  CHECK(r.match.path_prefix == "/");
  CHECK(r.match.hosts.empty());
  REQUIRE(r.endpoints.size() == 2);
  CHECK(r.endpoints[0] == EndpointConfig{"chat-0", "10.0.0.5", 8080, EndpointState::Active});
  CHECK(r.endpoints[1] == EndpointConfig{"chat-1", "10.0.0.6", 8080, EndpointState::Active});
  REQUIRE(d.routes.size() == 1);
  CHECK(d.routes[0].accepted);
  CHECK((d.routes[0].reason == RouteReason::Accepted));
  CHECK(d.routes[0].served_generation == 1);
  CHECK(d.routes[0].message == "2 active endpoints, 0 draining endpoints");
  CHECK(validate(d.config).empty());
  CHECK(d.config.version == configVersion(d.config));
}

TEST_CASE("every spec field maps onto the route config") {
  json spec = chatSpec();
  spec["ttl"] = "1h30m";
  spec["maxSessions"] = 50;
  spec["placement"] = "ConsistentHash";
  spec["onMissingKey"] = "Reject";
  spec["onEndpointLost"] = "Reject";
  spec["match"] = {{"hosts", {"Chat.Example.com", "a.example.com"}}, {"pathPrefix", "/api"}};
  auto parsed = parseRouteSpec(spec, "shop/chat");
  REQUIRE(parsed.ok());
  const auto& r = parsed->route;
  CHECK(r.ttl == std::chrono::minutes(90));
  CHECK(r.max_sessions == 50);
  CHECK((r.placement == Placement::ConsistentHash));
  CHECK((r.on_missing_key == OnMissingKey::Reject));
  CHECK((r.on_endpoint_lost == OnEndpointLost::Reject));
  CHECK(r.match.hosts == std::vector<std::string>{"a.example.com", "chat.example.com"});
  CHECK(r.match.path_prefix == "/api");
  CHECK(parsed->port == PortRef{8080, ""});
}

TEST_CASE("terminating pods and running-but-not-ready pods are Draining - others skipped") {
  Cluster s;
  s.routes = {route("shop", "chat", chatSpec())};
  json terminating = chatPod("chat-2", "10.0.0.7");
  terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z";
  s.pods = {chatPod("chat-0", "10.0.0.5"),
            chatPod("chat-1", "10.0.0.6", /*ready=*/false),
            terminating,
            chatPod("chat-3", ""),  // no IP yet
            pod("shop", "chat-4", {{"app", "chat"}}, "10.0.0.8", false, "Pending"),
            pod("shop", "chat-5", {{"app", "chat"}}, "10.0.0.9", true, "Succeeded")};
  auto d = compute(s);
  REQUIRE(d.config.routes.size() == 1);
  const auto& eps = d.config.routes[0].endpoints;
  REQUIRE(eps.size() == 3);
  CHECK(eps[0].name == "chat-0");
  CHECK((eps[0].state == EndpointState::Active));
  CHECK(eps[1].name == "chat-1");
  CHECK((eps[1].state == EndpointState::Draining));
  CHECK(eps[2].name == "chat-2");
  CHECK((eps[2].state == EndpointState::Draining));
  CHECK(d.routes[0].activeEndpoints() == 1);
  CHECK(d.routes[0].drainingEndpoints() == 2);
}

TEST_CASE("podPhase on its own") {
  CHECK(podPhase(decodePod(chatPod("a", "10.0.0.1"))) == PodPhase::Active);
  CHECK(podPhase(decodePod(chatPod("a", "10.0.0.1", false))) == PodPhase::Draining);
  CHECK(podPhase(decodePod(chatPod("a", ""))) == PodPhase::Skip);
  CHECK(podPhase(decodePod(json{{"metadata", {{"name", "a"}}}})) == PodPhase::Skip);
  json p = chatPod("a", "10.0.0.1");
  p["status"].erase("conditions");
  CHECK(podPhase(decodePod(p)) ==
        PodPhase::Draining);  // Running, readiness unknown: no new sessions
  p["status"]["phase"] = "Pending";
  CHECK(podPhase(decodePod(p)) == PodPhase::Skip);
  p["status"]["phase"] = "Failed";
  p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  CHECK(podPhase(decodePod(p)) == PodPhase::Skip);
}

TEST_CASE("named ports resolve per pod - pods without the name are skipped") {
  json spec = chatSpec();
  spec["port"] = "http";
  Cluster s;
  s.routes = {route("shop", "chat", spec)};
  json other_port = chatPod("chat-1", "10.0.0.6");
  other_port["spec"]["containers"][0]["ports"][0]["containerPort"] = 9100;
  json no_port = chatPod("chat-2", "10.0.0.7");
  no_port["spec"]["containers"][0]["ports"][0]["name"] = "metrics";
  s.pods = {chatPod("chat-0", "10.0.0.5"), other_port, no_port};
  auto d = compute(s);
  REQUIRE(d.routes[0].accepted);
  const auto& eps = d.config.routes[0].endpoints;
  REQUIRE(eps.size() == 2);
  CHECK(eps[0].port == 9000);
  CHECK(eps[1].port == 9100);
  CHECK(d.routes[0].message.find("1 selected pod without the named port skipped") !=
        std::string::npos);
}

TEST_CASE("a numeric port given as a string is a number - not a name") {
  json spec = chatSpec();
  spec["port"] = "8081";
  auto parsed = parseRouteSpec(spec, "shop/chat");
  REQUIRE(parsed.ok());
  CHECK(parsed->port == PortRef{8081, ""});
}

TEST_CASE("PortNotFound when pods are selected but none has the port name") {
  json spec = chatSpec();
  spec["port"] = "grpc";
  Cluster s;
  s.routes = {route("shop", "chat", spec)};
  s.pods = {chatPod("chat-0", "10.0.0.5")};
  auto d = compute(s);
  CHECK_FALSE(d.routes[0].accepted);
  CHECK((d.routes[0].reason == RouteReason::PortNotFound));
  CHECK(d.routes[0].message.find("\"grpc\"") != std::string::npos);
  CHECK_FALSE(d.routes[0].served());
  CHECK(d.config.routes.empty());
}

TEST_CASE("a route selecting no pods is Accepted with zero endpoints") {
  json spec = chatSpec();
  spec["port"] = "grpc";
  Cluster s;
  s.routes = {route("shop", "chat", spec)};
  auto d = compute(s);
  CHECK(d.routes[0].accepted);
  REQUIRE(d.config.routes.size() == 1);
  CHECK(d.config.routes[0].endpoints.empty());
}

TEST_CASE("invalid specs get a reason and a message naming the field") {
  auto reasonOf = [](json spec) {
    auto p = parseRouteSpec(spec, "shop/chat");
    REQUIRE_FALSE(p.ok());
    return std::make_pair(p.error().reason, p.error().message);
  };
  json s = chatSpec();
  s["selector"] = {{"matchExpressions", {{{"key", "app"}, {"operator", "Like"}}}}};
  auto [r1, m1] = reasonOf(s);
  CHECK((r1 == RouteReason::InvalidSelector));
  CHECK(m1.find("unknown operator") != std::string::npos);

  s = chatSpec();
  s.erase("selector");
  CHECK((reasonOf(s).first == RouteReason::InvalidSelector));

  s = chatSpec();
  s["header"] = "bad header";
  auto [r2, m2] = reasonOf(s);
  CHECK((r2 == RouteReason::InvalidSpec));
  CHECK(m2.find("spec.header") != std::string::npos);

  s = chatSpec();
  s["ttl"] = "forever";
  CHECK(reasonOf(s).second.find("spec.ttl") != std::string::npos);
  s["ttl"] = "0s";
  CHECK(reasonOf(s).second.find("spec.ttl") != std::string::npos);

  s = chatSpec();
  s["port"] = 70000;
  CHECK(reasonOf(s).second.find("spec.port") != std::string::npos);
  s["port"] = "Not_A_Name";
  CHECK(reasonOf(s).second.find("spec.port") != std::string::npos);
  s.erase("port");
  CHECK(reasonOf(s).second.find("spec.port is required") != std::string::npos);

  s = chatSpec();
  s["placement"] = "Random";
  CHECK(reasonOf(s).second.find("spec.placement must be one of LeastSessions") !=
        std::string::npos);
  s = chatSpec();
  s["maxSessions"] = 0;
  CHECK(reasonOf(s).second.find("spec.maxSessions") != std::string::npos);
  s = chatSpec();
  s["match"] = {{"pathPrefix", "api"}};
  CHECK(reasonOf(s).second.find("spec.match.pathPrefix") != std::string::npos);
  CHECK((reasonOf(json()).first == RouteReason::InvalidSpec));
}

TEST_CASE("a spec of the wrong JSON types is InvalidSpec - never an exception") {
  Cluster s;
  json weird = chatSpec();
  weird["match"] = {{"hosts", {1, 2}}};
  s.routes = {route("shop", "a", weird), route("shop", "b", json::array())};
  auto d = compute(s);
  REQUIRE(d.routes.size() == 2);
  CHECK((d.routes[0].reason == RouteReason::InvalidSpec));
  CHECK((d.routes[1].reason == RouteReason::InvalidSpec));
  CHECK(d.config.routes.empty());
}

TEST_CASE("conflicting matches: the older route wins - the newer is ConflictingMatch") {
  Cluster s;
  json spec = chatSpec();
  spec["match"] = {{"hosts", {"chat.example.com"}}};
  json other = chatSpec();
  other["match"] = {{"hosts", {"other.example.com", "chat.example.com"}}};
  json distinct = chatSpec();
  distinct["match"] = {{"hosts", {"chat.example.com"}}, {"pathPrefix", "/v2"}};
  s.routes = {route("shop", "newer", other, "2026-01-02T00:00:00Z"),
              route("shop", "older", spec, "2026-01-01T00:00:00Z"),
              route("shop", "v2", distinct, "2026-01-03T00:00:00Z")};
  auto d = compute(s);
  REQUIRE(d.routes.size() == 3);
  CHECK(d.routes[0].key == "shop/newer");
  CHECK((d.routes[0].reason == RouteReason::ConflictingMatch));
  CHECK(d.routes[0].message.find("shop/older") != std::string::npos);
  CHECK_FALSE(d.routes[0].served());
  CHECK(d.routes[1].accepted);
  CHECK(d.routes[2].accepted);
  REQUIRE(d.config.routes.size() == 2);
  CHECK(d.config.routes[0].name == "shop/older");
  CHECK(d.config.routes[1].name == "shop/v2");
}

TEST_CASE("two any-host routes with the same prefix conflict - any-host and a host do not") {
  Cluster s;
  json with_host = chatSpec();
  with_host["match"] = {{"hosts", {"chat.example.com"}}};
  s.routes = {route("a", "first", chatSpec(), "2026-01-01T00:00:00Z"),
              route("b", "second", chatSpec(), "2026-01-01T00:00:00Z"),
              route("c", "third", with_host, "2026-01-01T00:00:00Z")};
  auto d = compute(s);
  // Same creation time: the name decides.
  CHECK(d.find("a/first")->accepted);
  CHECK((d.find("b/second")->reason == RouteReason::ConflictingMatch));
  CHECK(d.find("c/third")->accepted);
}

TEST_CASE("within one second of creation a served route keeps its match against a newcomer") {
  json spec = chatSpec();
  spec["match"] = {{"hosts", {"chat.example.com"}}};
  Cluster s;
  s.routes = {route("shop", "zeta", spec, "2026-01-01T00:00:00Z")};
  auto first = compute(s);
  REQUIRE(first.find("shop/zeta")->accepted);

  // "alpha" sorts first and was created in the same second.
  s.routes.push_back(route("shop", "alpha", spec, "2026-01-01T00:00:00Z"));
  auto second = compute(s, first.last_good);
  CHECK(second.find("shop/zeta")->accepted);
  CHECK((second.find("shop/alpha")->reason == RouteReason::ConflictingMatch));

  // The same without this process's memory (another replica, a restart): the status says who
  // was accepted.
  s.routes[0]["status"] = {
      {"conditions", json::array({{{"type", "Accepted"}, {"status", "True"}}})}};
  auto fresh = compute(s);
  CHECK(fresh.find("shop/zeta")->accepted);
  CHECK((fresh.find("shop/alpha")->reason == RouteReason::ConflictingMatch));
}

TEST_CASE("an invalid update keeps serving the last good spec with current pods") {
  Cluster s;
  s.routes = {route("shop", "chat", chatSpec(), "2026-01-01T00:00:00Z", 1)};
  s.pods = {chatPod("chat-0", "10.0.0.5")};
  auto first = compute(s);
  REQUIRE(first.routes[0].accepted);
  REQUIRE(first.last_good.count("shop/chat") == 1);

  json broken = chatSpec();
  broken["ttl"] = "soon";
  s.routes = {route("shop", "chat", broken, "2026-01-01T00:00:00Z", 2)};
  s.pods = {chatPod("chat-0", "10.0.0.5"), chatPod("chat-1", "10.0.0.6")};
  auto second = compute(s, first.last_good);
  const auto& v = second.routes[0];
  CHECK_FALSE(v.accepted);
  CHECK((v.reason == RouteReason::InvalidSpec));
  CHECK(v.served_generation == 1);
  CHECK(v.message.find("still serving the last accepted spec (generation 1)") != std::string::npos);
  REQUIRE(second.config.routes.size() == 1);
  CHECK(second.config.routes[0].ttl == std::chrono::minutes(30));
  CHECK(second.config.routes[0].endpoints.size() == 2);  // the new pod is followed
  CHECK(second.last_good.at("shop/chat").spec.generation == 1);

  // Fixed again: generation 3 is served.
  json fixed = chatSpec();
  fixed["ttl"] = "5m";
  s.routes = {route("shop", "chat", fixed, "2026-01-01T00:00:00Z", 3)};
  auto third = compute(s, second.last_good);
  CHECK(third.routes[0].accepted);
  CHECK(third.config.routes[0].ttl == std::chrono::minutes(5));
  CHECK(third.last_good.at("shop/chat").spec.generation == 3);
}

TEST_CASE("a port rename to a missing name keeps serving the old port") {
  json spec = chatSpec();
  spec["port"] = "http";
  Cluster s;
  s.routes = {route("shop", "chat", spec, "2026-01-01T00:00:00Z", 1)};
  s.pods = {chatPod("chat-0", "10.0.0.5")};
  auto first = compute(s);
  spec["port"] = "htp";
  s.routes = {route("shop", "chat", spec, "2026-01-01T00:00:00Z", 2)};
  auto second = compute(s, first.last_good);
  CHECK((second.routes[0].reason == RouteReason::PortNotFound));
  REQUIRE(second.config.routes.size() == 1);
  REQUIRE(second.config.routes[0].endpoints.size() == 1);
  CHECK(second.config.routes[0].endpoints[0].port == 9000);
}

TEST_CASE("a route never valid is left out - a re-created route does not inherit last good") {
  Cluster s;
  s.routes = {route("shop", "chat", chatSpec())};
  auto first = compute(s);
  json broken = chatSpec();
  broken["header"] = "";
  json recreated = route("shop", "chat", broken);
  recreated["metadata"]["uid"] = "a-new-uid";
  s.routes = {recreated};
  auto second = compute(s, first.last_good);
  CHECK_FALSE(second.routes[0].served());
  CHECK(second.config.routes.empty());
  CHECK(second.last_good.empty());
}

TEST_CASE("deleted routes drop out of the config and of last good") {
  Cluster s;
  s.routes = {route("shop", "chat", chatSpec())};
  auto first = compute(s);
  s.routes.clear();
  auto second = compute(s, first.last_good);
  CHECK(second.config.routes.empty());
  CHECK(second.routes.empty());
  CHECK(second.last_good.empty());
  CHECK(second.config.version != first.config.version);
}

TEST_CASE("the version is a stable content hash: same content - same version - any input order") {
  Cluster a;
  a.routes = {route("shop", "chat", chatSpec()), route("shop", "b", [] {
                json s = chatSpec();
                s["match"] = {{"pathPrefix", "/b"}};
                return s;
              }())};
  a.pods = {chatPod("chat-0", "10.0.0.5"), chatPod("chat-1", "10.0.0.6")};
  Cluster b = a;
  std::reverse(b.routes.begin(), b.routes.end());
  std::reverse(b.pods.begin(), b.pods.end());
  auto da = compute(a);
  auto db = compute(b);
  CHECK(da.config == db.config);
  CHECK(da.config.version == db.config.version);
  CHECK(da.config.version != 0);

  // Status-only changes on objects (resourceVersion, status) do not change the config.
  a.routes[0]["status"] = {{"sessions", 5}};
  a.routes[0]["metadata"]["resourceVersion"] = "999";
  CHECK(compute(a).config.version == da.config.version);

  // A pod turning NotReady does.
  a.pods[0]["status"]["conditions"][0]["status"] = "False";
  CHECK(compute(a).config.version != da.config.version);
}

TEST_CASE("proxy settings are carried into the config") {
  ProxySettings settings;
  settings.listen = "127.0.0.1:8080";
  settings.limits.max_header_count = 10;
  settings.headers.moved_from = "x-prev";
  auto d = computeDesiredState({}, {}, settings);
  CHECK(d.config.listen == "127.0.0.1:8080");
  CHECK(d.config.limits.max_header_count == 10);
  CHECK(d.config.headers.moved_from == "x-prev");
  CHECK(d.config.routes.empty());
}

}  // namespace
}  // namespace sticky::op
