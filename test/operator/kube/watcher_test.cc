#include "kube/watcher.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "operator/kube/in_memory_kube_api.h"
#include "support/process.h"

namespace sticky::op::kube {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

const BackoffPolicy kPolicy{milliseconds(100), milliseconds(1600), 2.0, 0.5};

json object(const std::string& name, const std::string& rv) {
  return {{"metadata", {{"namespace", "shop"}, {"name", name}, {"resourceVersion", rv}}}};
}

WatchEvent event(WatchEventType type, json obj) {
  return WatchEvent{type, std::move(obj)};
}

WatchState watching(const std::string& rv) {
  WatchState s;
  s.phase = WatchPhase::Watching;
  s.resource_version = rv;
  return s;
}

template <class A>
const A* actionOf(const WatchStep& step) {
  for (const auto& action : step.actions) {
    if (const A* a = std::get_if<A>(&action)) return a;
  }
  return nullptr;
}

TEST_CASE("watcher: a successful list starts watching from the list's resourceVersion") {
  const json items = json::array({object("a", "5"), object("b", "7")});
  WatchStep step = nextWatchStep(WatchState{}, ListSucceeded{items, "9"}, kPolicy, 0.0);
  CHECK(step.state.phase == WatchPhase::Watching);
  CHECK(step.state.resource_version == "9");
  const auto* replace = actionOf<ReplaceAllAction>(step);
  REQUIRE(replace != nullptr);
  CHECK(replace->items == items);
  CHECK(replace->resource_version == "9");
}

TEST_CASE("watcher: events are applied and advance the resourceVersion") {
  for (auto type : {WatchEventType::Added, WatchEventType::Modified, WatchEventType::Deleted}) {
    WatchStep step =
        nextWatchStep(watching("9"), EventReceived{event(type, object("a", "12"))}, kPolicy, 0.0);
    CHECK(step.state.phase == WatchPhase::Watching);
    CHECK(step.state.resource_version == "12");
    const auto* apply = actionOf<ApplyEventAction>(step);
    REQUIRE(apply != nullptr);
    CHECK(apply->event.type == type);
    CHECK(apply->event.object["metadata"]["name"].get<std::string>() == "a");
  }
}

TEST_CASE("watcher: a bookmark updates the resourceVersion only") {
  const json bookmark = {{"kind", "Pod"}, {"metadata", {{"resourceVersion", "40"}}}};
  WatchStep step = nextWatchStep(
      watching("9"), EventReceived{event(WatchEventType::Bookmark, bookmark)}, kPolicy, 0.0);
  CHECK(step.state == watching("40"));
  CHECK(step.actions.empty());
}

TEST_CASE("watcher: the server ending the stream resumes from the last version seen") {
  WatchState s = watching("9");
  s = nextWatchStep(s, EventReceived{event(WatchEventType::Added, object("a", "15"))}, kPolicy, 0)
          .state;
  s = nextWatchStep(s,
                    EventReceived{event(WatchEventType::Bookmark,
                                        {{"metadata", {{"resourceVersion", "21"}}}})},
                    kPolicy, 0)
          .state;
  WatchStep step = nextWatchStep(s, WatchClosed{}, kPolicy, 0.0);
  CHECK(step.state == watching("21"));
  CHECK(step.actions.empty());
}

TEST_CASE("watcher: a watch that ends at once without events backs off instead of spinning") {
  WatchStep step = nextWatchStep(watching("9"), WatchClosed{false, milliseconds(3)}, kPolicy, 0.0);
  CHECK(step.state.phase == WatchPhase::Backoff);
  CHECK_FALSE(step.state.relist_after_backoff);
  CHECK(step.state.resource_version == "9");
  CHECK(step.state.failures == 1);
  // A long quiet watch (the server's timeoutSeconds) or one that delivered events is normal.
  CHECK(nextWatchStep(watching("9"), WatchClosed{false, milliseconds(300000)}, kPolicy, 0).state ==
        watching("9"));
  CHECK(nextWatchStep(watching("9"), WatchClosed{true, milliseconds(3)}, kPolicy, 0).state ==
        watching("9"));
}

TEST_CASE("watcher: 410 Gone relists, as an ERROR event or as an HTTP status") {
  const json expired = {{"kind", "Status"},
                        {"code", 410},
                        {"reason", "Expired"},
                        {"message", "too old resource version: 9 (120)"}};
  SUBCASE("ERROR event") {
    WatchStep step = nextWatchStep(
        watching("9"), EventReceived{event(WatchEventType::Error, expired)}, kPolicy, 0.0);
    CHECK(step.state.phase == WatchPhase::NeedList);
    CHECK(step.state.resource_version.empty());
    CHECK(actionOf<StopStreamAction>(step) != nullptr);
    CHECK(actionOf<ApplyEventAction>(step) == nullptr);
  }
  SUBCASE("ERROR event with reason only") {
    const json gone = {{"kind", "Status"}, {"reason", "Gone"}, {"message", "gone"}};
    WatchStep step =
        nextWatchStep(watching("9"), EventReceived{event(WatchEventType::Error, gone)}, kPolicy, 0);
    CHECK(step.state.phase == WatchPhase::NeedList);
  }
  SUBCASE("HTTP 410") {
    KubeError error{410, "Gone", "WATCH ... failed with HTTP 410", "too old resource version"};
    WatchStep step = nextWatchStep(watching("9"), WatchFailed{error}, kPolicy, 0.0);
    CHECK(step.state.phase == WatchPhase::NeedList);
    CHECK(step.state.failures == 0);  // not a failure: relist at once
  }
  SUBCASE("the relist then delivers the whole collection") {
    WatchState s = nextWatchStep(watching("9"),
                                 EventReceived{event(WatchEventType::Error, expired)}, kPolicy, 0)
                       .state;
    // The stream ending after the ERROR event changes nothing.
    s = nextWatchStep(s, WatchClosed{}, kPolicy, 0).state;
    CHECK(s.phase == WatchPhase::NeedList);
    WatchStep step =
        nextWatchStep(s, ListSucceeded{json::array({object("a", "130")}), "131"}, kPolicy, 0);
    CHECK(step.state == watching("131"));
    REQUIRE(actionOf<ReplaceAllAction>(step) != nullptr);
  }
}

TEST_CASE("watcher: an ERROR event whose Status fields have other types does not throw") {
  // Found by fuzz/watch_stream_fuzz.cc: json::value("code", 0) converted a code of 4.4e86 to
  // int (undefined behaviour), and threw type_error for {"code": "410"} or a non-string reason
  // or message, out of the pure transition function.
  for (const json& status :
       {json{{"code", 4.44e86}}, json{{"code", "410"}}, json{{"reason", 7}, {"message", {1, 2}}},
        json{{"code", 410.5}, {"message", nullptr}}, json::array()}) {
    INFO(status.dump());
    WatchStep step{};
    CHECK_NOTHROW(step = nextWatchStep(watching("9"),
                                       EventReceived{event(WatchEventType::Error, status)}, kPolicy,
                                       0.0));
    CHECK(step.state.phase != WatchPhase::Watching);
    CHECK(actionOf<StopStreamAction>(step) != nullptr);
  }
  // A numeric 410, integer or not, still means expired: list again.
  CHECK(nextWatchStep(watching("9"), EventReceived{event(WatchEventType::Error, {{"code", 410.0}})},
                      kPolicy, 0.0)
            .state.phase == WatchPhase::NeedList);
}

TEST_CASE("watcher: other watch errors back off, then resume watching from the same version") {
  KubeError error{0, "", "WATCH /api/v1/pods failed: connection refused.", "connection refused"};
  WatchStep step = nextWatchStep(watching("9"), WatchFailed{error}, kPolicy, 0.0);
  CHECK(step.state.phase == WatchPhase::Backoff);
  CHECK(step.state.failures == 1);
  CHECK(step.state.delay == milliseconds(100));
  CHECK_FALSE(step.state.relist_after_backoff);
  CHECK(step.state.resource_version == "9");
  const auto* report = actionOf<ReportErrorAction>(step);
  REQUIRE(report != nullptr);
  CHECK(report->message.find("connection refused") != std::string::npos);

  WatchStep resumed = nextWatchStep(step.state, BackoffElapsed{}, kPolicy, 0.0);
  CHECK(resumed.state.phase == WatchPhase::Watching);
  CHECK(resumed.state.resource_version == "9");
  CHECK(resumed.state.failures == 1);  // reset only by success

  SUBCASE("an ERROR event that is not 410 also backs off and stops the stream") {
    const json status = {{"kind", "Status"}, {"code", 500}, {"message", "etcd is sad"}};
    WatchStep e = nextWatchStep(watching("9"), EventReceived{event(WatchEventType::Error, status)},
                                kPolicy, 0);
    CHECK(e.state.phase == WatchPhase::Backoff);
    CHECK_FALSE(e.state.relist_after_backoff);
    CHECK(actionOf<StopStreamAction>(e) != nullptr);
  }
}

TEST_CASE("watcher: list failures back off and list again") {
  KubeError error{403, "Forbidden", "GET /api/v1/pods failed with HTTP 403", "forbidden"};
  WatchStep step = nextWatchStep(WatchState{}, ListFailed{error}, kPolicy, 0.0);
  CHECK(step.state.phase == WatchPhase::Backoff);
  CHECK(step.state.relist_after_backoff);
  WatchStep after = nextWatchStep(step.state, BackoffElapsed{}, kPolicy, 0.0);
  CHECK(after.state.phase == WatchPhase::NeedList);
}

TEST_CASE("watcher: backoff grows exponentially up to the cap and resets on success") {
  KubeError error{503, "ServiceUnavailable", "unavailable", "unavailable"};
  WatchState s;
  std::vector<long> delays;
  for (int i = 0; i < 7; ++i) {
    s = nextWatchStep(s, ListFailed{error}, kPolicy, 0.0).state;
    REQUIRE(s.phase == WatchPhase::Backoff);
    delays.push_back(long(s.delay.count()));
    s = nextWatchStep(s, BackoffElapsed{}, kPolicy, 0.0).state;
  }
  CHECK(delays == std::vector<long>{100, 200, 400, 800, 1600, 1600, 1600});
  CHECK(s.failures == 7);

  // A successful list resets the exponent.
  s = nextWatchStep(s, ListSucceeded{json::array(), "3"}, kPolicy, 0.0).state;
  CHECK(s.failures == 0);
  s = nextWatchStep(s, WatchFailed{KubeError{0, "", "reset", "reset"}}, kPolicy, 0.0).state;
  CHECK(s.delay == milliseconds(100));

  // So does any event received while watching.
  WatchState w = watching("3");
  w.failures = 5;
  w = nextWatchStep(w, EventReceived{event(WatchEventType::Added, object("a", "4"))}, kPolicy, 0)
          .state;
  CHECK(w.failures == 0);
}

TEST_CASE("watcher: jitter stays within [nominal * (1 - jitter), nominal]") {
  for (int failures = 0; failures < 8; ++failures) {
    const double nominal = std::min(1600.0, 100.0 * (1 << failures));
    for (double u : {0.0, 0.25, 0.5, 0.75, 0.999999}) {
      const auto delay = backoffDelay(kPolicy, failures, u);
      CHECK(delay.count() <= long(nominal));
      CHECK(delay.count() >= long(nominal * 0.5));
    }
    CHECK(backoffDelay(kPolicy, failures, 0.0).count() == long(nominal));
    CHECK(backoffDelay(kPolicy, failures, 0.999999).count() == std::lround(nominal * 0.5));
  }
  // Different random draws give different delays (the point of jitter).
  CHECK(backoffDelay(kPolicy, 3, 0.1) != backoffDelay(kPolicy, 3, 0.9));
}

TEST_CASE("watcher: inputs that do not fit the phase change nothing") {
  const WatchState need_list;
  CHECK(nextWatchStep(need_list, EventReceived{event(WatchEventType::Added, object("a", "1"))},
                      kPolicy, 0)
            .state == need_list);
  CHECK(nextWatchStep(need_list, BackoffElapsed{}, kPolicy, 0).state == need_list);
  const WatchState w = watching("5");
  WatchStep late = nextWatchStep(w, ListSucceeded{json::array(), "1"}, kPolicy, 0);
  CHECK(late.state == w);
  CHECK(late.actions.empty());
  WatchState backing_off;
  backing_off.phase = WatchPhase::Backoff;
  backing_off.resource_version = "5";
  backing_off.failures = 2;
  backing_off.delay = milliseconds(400);
  // A stream that ends after the machine already decided to back off is ignored.
  CHECK(nextWatchStep(backing_off, WatchClosed{}, kPolicy, 0).state == backing_off);
  CHECK(nextWatchStep(backing_off, WatchFailed{KubeError{}}, kPolicy, 0).state == backing_off);
}

// ---------------------------------------------------------------------------------------------
// The Watcher thread against an in-memory API: what reaches the sink.

// What a sink has been told, as the set of names it holds now.
struct Mirror {
  std::mutex mutex;
  std::set<std::string> names;
  int replaced = 0;
  std::vector<std::string> errors;

  WatchSink sink() {
    WatchSink s;
    s.replace_all = [this](const json& items, const std::string&) {
      std::lock_guard lock(mutex);
      names.clear();
      for (const auto& item : items) names.insert(item["metadata"]["name"].get<std::string>());
      ++replaced;
    };
    s.apply = [this](const WatchEvent& e) {
      std::lock_guard lock(mutex);
      const std::string name = e.object["metadata"]["name"];
      if (e.type == WatchEventType::Deleted) {
        names.erase(name);
      } else {
        names.insert(name);
      }
    };
    s.report_error = [this](const std::string& message) {
      std::lock_guard lock(mutex);
      errors.push_back(message);
    };
    return s;
  }
  bool holds(const std::set<std::string>& want) {
    std::lock_guard lock(mutex);
    return names == want;
  }
};

json pod(const std::string& name) {
  return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", name}}}};
}

WatcherOptions podWatch() {
  WatcherOptions options;
  options.path = kPodResource.collectionPath("shop");
  options.backoff = BackoffPolicy{milliseconds(10), milliseconds(50), 2.0, 0.0};
  options.random = [] { return 0.0; };
  return options;
}

TEST_CASE("watcher: list, then watch, then 410 Gone - list again and carry on") {
  using sticky::test::waitFor;
  using namespace std::chrono_literals;
  test::InMemoryKubeApi api;
  const std::string pods = kPodResource.collectionPath("shop");
  REQUIRE(api.create(pods, pod("a")).ok());
  REQUIRE(api.create(kPodResource.collectionPath("other"), pod("elsewhere")).ok());
  Mirror mirror;
  Watcher watcher(api, podWatch(), mirror.sink());
  watcher.start();

  // The list: what exists now, in this namespace only.
  REQUIRE(waitFor([&] { return mirror.holds({"a"}); }, 10s));
  CHECK(watcher.listCount() == 1);
  REQUIRE(api.waitForWatches(1, 10s));
  CHECK(watcher.state().phase == WatchPhase::Watching);
  CHECK(watcher.state().resource_version == api.resourceVersion());

  // The watch: changes as they happen.
  REQUIRE(api.create(pods, pod("b")).ok());
  CHECK(waitFor([&] { return mirror.holds({"a", "b"}); }, 10s));
  REQUIRE(api.remove(kPodResource.objectPath("shop", "a")).ok());
  CHECK(waitFor([&] { return mirror.holds({"b"}); }, 10s));
  CHECK(watcher.listCount() == 1);

  // The history is compacted and the stream ends: resuming is 410 Gone, so the watcher lists
  // again (and sees what changed meanwhile), then watches from the new version.
  api.expireHistory();
  api.closeWatches();
  REQUIRE(api.create(pods, pod("c")).ok());
  CHECK(waitFor([&] { return watcher.listCount() == 2; }, 10s));
  CHECK(waitFor([&] { return mirror.holds({"b", "c"}); }, 10s));
  REQUIRE(api.create(pods, pod("d")).ok());
  CHECK(waitFor([&] { return mirror.holds({"b", "c", "d"}); }, 10s));
  CHECK(watcher.listCount() == 2);
  {
    std::lock_guard lock(mirror.mutex);
    CHECK(std::any_of(mirror.errors.begin(), mirror.errors.end(), [](const std::string& m) {
      return m.find("listing again") != std::string::npos;
    }));
  }
  watcher.stop();
  CHECK(api.calls("list") == 2);
}

TEST_CASE("watcher: a failed list backs off and lists again - a 410 on the watch call relists") {
  using sticky::test::waitFor;
  using namespace std::chrono_literals;
  test::InMemoryKubeApi api;
  const std::string pods = kPodResource.collectionPath("shop");
  REQUIRE(api.create(pods, pod("a")).ok());
  api.failNext("list", test::InMemoryKubeApi::error(500, "InternalError", "etcd is down"));
  Mirror mirror;
  Watcher watcher(api, podWatch(), mirror.sink());
  watcher.start();
  REQUIRE(waitFor([&] { return mirror.holds({"a"}); }, 10s));
  CHECK(api.calls("list") == 2);
  CHECK(watcher.listCount() == 1);
  REQUIRE(api.waitForWatches(1, 10s));

  // The next watch call itself answers 410: list again.
  api.failNext("watch", test::InMemoryKubeApi::gone());
  REQUIRE(api.create(pods, pod("b")).ok());
  CHECK(waitFor([&] { return mirror.holds({"a", "b"}); }, 10s));
  api.closeWatches();
  CHECK(waitFor([&] { return watcher.listCount() == 2; }, 10s));
  CHECK(waitFor([&] { return mirror.holds({"a", "b"}); }, 10s));
  watcher.stop();
  watcher.stop();  // idempotent
}

}  // namespace
}  // namespace sticky::op::kube
