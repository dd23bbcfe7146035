#include "kube/cache.h"

#include <doctest/doctest.h>

#include <thread>

namespace sticky::op::kube {
namespace {

using nlohmann::json;

json pod(const std::string& ns, const std::string& name, const std::string& ip = "") {
  return {{"metadata", {{"namespace", ns}, {"name", name}}}, {"status", {{"podIP", ip}}}};
}

std::vector<std::string> names(const std::vector<ObjectPtr>& objects) {
  std::vector<std::string> out;
  for (const auto& o : objects) out.push_back((*o)["metadata"]["name"]);
  return out;
}

TEST_CASE("cache: upsert, find, inNamespace, remove") {
  ObjectCache cache;
  cache.upsert("Pod", pod("shop", "b", "10.0.0.2"));
  cache.upsert("Pod", pod("shop", "a", "10.0.0.1"));
  cache.upsert("Pod", pod("blog", "z"));
  cache.upsert("StickyRoute", {{"metadata", {{"namespace", "shop"}, {"name", "chat"}}}});

  auto snap = cache.snapshot();
  CHECK(snap->objects("Pod").size() == 3);
  CHECK(names(snap->inNamespace("Pod", "shop")) == std::vector<std::string>{"a", "b"});
  CHECK(names(snap->inNamespace("Pod", "blog")) == std::vector<std::string>{"z"});
  CHECK(snap->inNamespace("Pod", "none").empty());
  REQUIRE(snap->find("Pod", "shop", "b") != nullptr);
  CHECK((*snap->find("Pod", "shop", "b"))["status"]["podIP"].get<std::string>() == "10.0.0.2");
  CHECK(snap->find("Pod", "shop", "c") == nullptr);
  CHECK(snap->objects("Service").empty());
  CHECK(snap->find("StickyRoute", "shop", "chat") != nullptr);

  cache.remove("Pod", ObjectKey{"shop", "a"});
  CHECK(cache.snapshot()->find("Pod", "shop", "a") == nullptr);
  // The earlier snapshot is immutable.
  CHECK(snap->find("Pod", "shop", "a") != nullptr);
}

TEST_CASE("cache: snapshots are immutable and shared until the next change") {
  ObjectCache cache;
  cache.upsert("Pod", pod("shop", "a", "10.0.0.1"));
  auto first = cache.snapshot();
  CHECK(cache.snapshot() == first);  // no change, same view
  cache.upsert("Pod", pod("shop", "a", "10.0.0.9"));
  auto second = cache.snapshot();
  CHECK(second != first);
  CHECK((*first->find("Pod", "shop", "a"))["status"]["podIP"].get<std::string>() == "10.0.0.1");
  CHECK((*second->find("Pod", "shop", "a"))["status"]["podIP"].get<std::string>() == "10.0.0.9");
  CHECK(second->version() > first->version());
}

TEST_CASE("cache: writes that change nothing do not bump the version") {
  ObjectCache cache;
  cache.upsert("Pod", pod("shop", "a"));
  const auto v = cache.version();
  cache.upsert("Pod", pod("shop", "a"));
  cache.remove("Pod", ObjectKey{"shop", "missing"});
  CHECK(cache.version() == v);
}

TEST_CASE("cache: replaceAll swaps a collection and reports added, modified, deleted") {
  ObjectCache cache;
  std::vector<CacheChange> seen;
  cache.setListener([&](const std::vector<CacheChange>& changes) {
    seen.insert(seen.end(), changes.begin(), changes.end());
  });
  cache.replaceAll("Pod", "", json::array({pod("shop", "a", "1"), pod("shop", "b", "2")}), "10");
  CHECK(seen.size() == 2);
  seen.clear();

  cache.replaceAll("Pod", "", json::array({pod("shop", "b", "2b"), pod("shop", "c", "3")}), "20");
  auto snap = cache.snapshot();
  CHECK(names(snap->inNamespace("Pod", "shop")) == std::vector<std::string>{"b", "c"});
  CHECK(cache.listedResourceVersion("Pod", "") == "20");
  std::map<std::string, CacheChangeType> by_name;
  for (const auto& c : seen) by_name[c.key.name] = c.type;
  CHECK(by_name == std::map<std::string, CacheChangeType>{{"a", CacheChangeType::Deleted},
                                                          {"b", CacheChangeType::Modified},
                                                          {"c", CacheChangeType::Added}});

  // The same list again changes nothing.
  const auto v = cache.version();
  seen.clear();
  cache.replaceAll("Pod", "", json::array({pod("shop", "b", "2b"), pod("shop", "c", "3")}), "30");
  CHECK(cache.version() == v);
  CHECK(seen.empty());
}

TEST_CASE("cache: a namespace-scoped replaceAll leaves other namespaces alone") {
  ObjectCache cache;
  cache.replaceAll("Pod", "shop", json::array({pod("shop", "a")}), "1");
  cache.replaceAll("Pod", "blog", json::array({pod("blog", "x"), pod("blog", "y")}), "2");
  cache.replaceAll("Pod", "shop", json::array(), "3");
  auto snap = cache.snapshot();
  CHECK(snap->inNamespace("Pod", "shop").empty());
  CHECK(names(snap->inNamespace("Pod", "blog")) == std::vector<std::string>{"x", "y"});
  // Items outside the scope are ignored rather than stored.
  cache.replaceAll("Pod", "shop", json::array({pod("shop", "a"), pod("blog", "intruder")}), "4");
  CHECK(cache.snapshot()->find("Pod", "blog", "intruder") == nullptr);
}

TEST_CASE("cache: synced once every registered source has listed") {
  ObjectCache cache;
  CHECK_FALSE(cache.synced());
  cache.registerSource("StickyRoute", "");
  cache.registerSource("Pod", "shop");
  cache.registerSource("Pod", "blog");
  CHECK_FALSE(cache.synced());
  cache.replaceAll("StickyRoute", "", json::array(), "1");
  cache.replaceAll("Pod", "shop", json::array(), "1");
  CHECK_FALSE(cache.synced());
  CHECK_FALSE(cache.snapshot()->synced());
  const auto before = cache.version();
  cache.replaceAll("Pod", "blog", json::array(), "1");  // empty, but the first list: counts
  CHECK(cache.synced());
  CHECK(cache.snapshot()->synced());
  CHECK(cache.version() > before);
}

TEST_CASE("cache: waitForChange wakes on a change from another thread, or at the deadline") {
  ObjectCache cache;
  const auto v0 = cache.version();
  const auto far = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::thread writer([&] { cache.upsert("Pod", pod("shop", "a")); });
  const auto v1 = cache.waitForChange(v0, far);
  writer.join();
  CHECK(v1 > v0);
  CHECK(cache.snapshot()->find("Pod", "shop", "a") != nullptr);

  // Nothing changes: returns the same version at the deadline.
  CHECK(cache.waitForChange(v1, std::chrono::steady_clock::now() + std::chrono::milliseconds(20)) ==
        v1);

  // shutdown() releases waiters for good.
  std::thread stopper([&] { cache.shutdown(); });
  CHECK(cache.waitForChange(v1, far) == v1);
  stopper.join();
}

TEST_CASE("cache: concurrent writers and readers") {
  ObjectCache cache;
  constexpr int kPerWriter = 200;
  std::vector<std::thread> threads;
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        cache.upsert("Pod", pod("ns" + std::to_string(w), "p" + std::to_string(i)));
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 200; ++i) {
      auto snap = cache.snapshot();
      CHECK(snap->objects("Pod").size() <= size_t(3 * kPerWriter));
    }
  });
  for (auto& t : threads) t.join();
  CHECK(cache.snapshot()->objects("Pod").size() == size_t(3 * kPerWriter));
}

}  // namespace
}  // namespace sticky::op::kube
