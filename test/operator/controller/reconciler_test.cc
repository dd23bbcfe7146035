// The reconciler's loop runs against a real API server and proxy in
// test/integration/operator/operator_test.cc; here are its pure helpers.
#include "controller/reconciler.h"

#include <doctest/doctest.h>

#include "kube/cache.h"

namespace sticky::op {
namespace {

using nlohmann::json;

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
  for (const auto& p : s.pods) names.push_back(p["metadata"]["name"]);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"chat-0", "feed-0"});
}

TEST_CASE("sessionsOf maps the proxy's stats per route and endpoint") {
  proxy::admin::ProxyStats stats;
  stats.config_version = 9;
  stats.loaded = true;
  proxy::admin::RouteStatsView r;
  r.name = "shop/chat";
  r.sessions = 5;
  r.endpoints = {{"chat-0", "10.0.0.5", 8080, proxy::EndpointState::Active, false, 3, 10},
                 {"chat-1", "10.0.0.6", 8080, proxy::EndpointState::Draining, false, 2, 4}};
  stats.routes = {r};
  auto s = sessionsOf(stats);
  REQUIRE(s.count("shop/chat") == 1);
  CHECK(s["shop/chat"].total == 5);
  CHECK(s["shop/chat"].by_endpoint ==
        std::map<std::string, uint64_t>{{"chat-0", 3}, {"chat-1", 2}});
}

}  // namespace
}  // namespace sticky::op
