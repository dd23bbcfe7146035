// The sticky-proxy process: flags, startup errors, SIGHUP reloads, SIGTERM drain.
#include <doctest/doctest.h>

#include <algorithm>
#include <future>
#include <thread>

#include "integration/proxy/proxy_harness.h"
#include "support/backend.h"
#include "support/paths.h"

namespace sticky::test {
namespace {

/// Runs sticky-proxy with `args` to completion; returns {exit status, output}.
std::pair<int, std::string> runProxy(const TempDir& dir, std::vector<std::string> args) {
  static int n = 0;
  std::string log = dir.file("run-" + std::to_string(++n) + ".log");
  args.insert(args.begin(), sticky::test::proxyBinary());
  Process p(args, log);
  int status = p.wait(10s);
  return {status, readFile(log)};
}

TEST_CASE("--help documents every flag and --version prints the version") {
  TempDir dir;
  auto [status, out] = runProxy(dir, {"--help"});
  CHECK(status == 0);
  for (const char* flag :
       {"--config", "--listen", "--admin-socket", "--metrics-listen", "--workers", "--log-level",
        "--log-format", "--help", "--version", "SIGHUP", "SIGTERM", "--shutdown-delay",
        "--redis-address", "--redis-sentinels", "--redis-master-name", "--redis-password-file"})
    CHECK_MESSAGE(out.find(flag) != std::string::npos, "help does not mention " << flag);
  auto [vstatus, vout] = runProxy(dir, {"--version"});
  CHECK(vstatus == 0);
  CHECK(vout.rfind("sticky-proxy ", 0) == 0);
}

TEST_CASE(
    "startup errors exit 1 and usage errors exit 2, with one sentence saying what was wrong") {
  TempDir dir;
  writeFile(dir.file("bad.yaml"), "routes:\n  - name: x\n    header: \"bad header\"\n");
  writeFile(dir.file("good.json"), R"({"routes": []})");
  Backend taken("127.0.0.1", 0, "taken");  // holds a port without SO_REUSEPORT
  struct Expect {
    std::vector<std::string> args;
    int status;
    std::string says;
  };
  std::vector<Expect> cases = {
      {{"--config", dir.file("bad.yaml")}, 1, "is invalid"},
      {{"--config", dir.file("missing.yaml")}, 1, "cannot read the config file"},
      {{"--config", dir.file("good.json"), "--listen", "nonsense"}, 1, "invalid listen address"},
      {{"--config", dir.file("good.json"), "--listen", "127.0.0.1:" + std::to_string(taken.port())},
       1,
       "cannot listen on 127.0.0.1:" + std::to_string(taken.port())},
      // Usage errors (the command line itself is wrong): exit 2, as in sticky-operator.
      {{"--config", dir.file("good.json"), "--workers", "0"}, 2, "--workers must be"},
      {{"--config", dir.file("good.json"), "--log-level", "loud"}, 2, "--log-level must be"},
      {{"--config", dir.file("good.json"), "--log-format", "xml"}, 2, "--log-format must be"},
      {{"--config", dir.file("good.json"), "--bogus"}, 2, "unknown flag '--bogus'"},
      {{"--config"}, 2, "--config needs a value"},
      {{}, 2, "give --config FILE, --admin-socket PATH, or both"},
      {{"--config", dir.file("good.json"), "--redis-address", "redis"},
       2,
       "sharedTable.redis.address: must be \"host:port\""},
      {{"--config", dir.file("good.json"), "--redis-sentinels", "s:26379"},
       2,
       "sharedTable.redis.masterName: is required with sentinels"},
      {{"--config", dir.file("good.json"), "--redis-address", "127.0.0.1:6379",
        "--redis-password-file", dir.file("no-such-password")},
       1,
       "cannot read the Redis password file"},
      {{"--config", dir.file("good.json"), "--shutdown-delay", "soon"},
       2,
       "--shutdown-delay must be"},
  };
  for (auto& c : cases) {
    INFO("expecting: " << c.says);
    auto [status, out] = runProxy(dir, c.args);
    CHECK(status == c.status);
    CHECK(out.find(c.says) != std::string::npos);
    CHECK(out.find("sticky-proxy: ") == 0);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);  // one line
  }
}

TEST_CASE("the example config is valid") {
  auto parsed =
      parseProxyConfig(readFile(sticky::test::sourceDir() + "/proxy/examples/proxy.yaml"));
  REQUIRE_MESSAGE(parsed.ok(), (parsed.ok() ? "" : parsed.error().front().toString()));
  CHECK(parsed->routes.size() == 2);
}

TEST_CASE("SIGHUP with an invalid file logs the errors and keeps the old config serving") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3");
  auto config = configOf(1, {stickyRoute("shop/chat", {b1.endpoint()})});
  ProxyProc proxy(dir, config);
  auto client = proxy.client();
  REQUIRE(backendOf(client.get("/", key("1"))) == "b1");

  proxy.reloadRaw("routes: [ {name: broken", "the previous config keeps serving");
  CHECK(backendOf(client.get("/", key("1"))) == "b1");

  auto moved = config;
  moved.version = 2;
  moved.listen = "127.0.0.1:1";
  proxy.reloadRaw(toJsonString(moved), "listen cannot change at runtime");
  CHECK(backendOf(client.get("/", key("2"))) == "b1");

  config.version = 3;
  config.routes[0].endpoints = {b2.endpoint()};
  proxy.reload(config);
  auto res = client.get("/", key("3"));
  CHECK(backendOf(res) == "b2");
  CHECK(client.connectionsOpened() == 1);  // reloads do not disturb open connections
}

TEST_CASE("SIGTERM drains: the request in flight finishes, new connections are refused, exit 0") {
  TempDir dir;
  Backend backend("127.0.0.2", 0, "slow");
  ProxyProc proxy(dir,
                  configOf(1, {stickyRoute("shop/chat", {{"slow", "127.0.0.2", backend.port()}})}));
  auto idle = proxy.client();
  REQUIRE(idle.get("/", key("idle")).status == 200);  // an idle keep-alive connection
  uint64_t before = backend.requests();

  auto in_flight = std::async(std::launch::async, [&] {
    auto c = proxy.client();
    return c.get("/slow?ms=1500", key("busy"));
  });
  REQUIRE(waitFor([&] { return backend.requests() > before; }, 5s));
  proxy.process().signal(SIGTERM);

  bool refused = waitFor(
      [&] {
        RawConnection probe("127.0.0.1", proxy.port());
        return !probe.error().empty();
      },
      1s);
  CHECK(refused);
  auto res = in_flight.get();
  CHECK(res.status == 200);
  CHECK(backendOf(res) == "slow");
  CHECK(res.header("connection") == "close");
  CHECK(proxy.process().wait(10s) == 0);
  CHECK(proxy.log().find("draining") != std::string::npos);
}

TEST_CASE("--shutdown-delay: SIGTERM fails /readyz at once, keeps serving, then drains") {
  TempDir dir;
  Backend backend("127.0.0.2", 0, "b");
  ProxyProc proxy(dir,
                  configOf(1, {stickyRoute("shop/chat", {{"b", "127.0.0.2", backend.port()}})}),
                  {"--shutdown-delay", "2s", "--metrics-listen", "127.0.0.1:0"});
  HttpClient probe("127.0.0.1", proxy.metricsPort());
  REQUIRE(probe.get("/readyz").status == 200);
  proxy.process().signal(SIGTERM);
  CHECK(waitFor([&] { return probe.get("/readyz").status == 503; }, 1s));
  // Still accepting new connections during the delay.
  HttpClient fresh("127.0.0.1", proxy.port());
  CHECK(fresh.get("/", key("late")).status == 200);
  CHECK(proxy.process().wait(10s) == 0);
  CHECK(proxy.log().find("still accepting for 2s") != std::string::npos);
}

}  // namespace
}  // namespace sticky::test
