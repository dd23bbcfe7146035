// The access log through the real sticky-proxy and real backends: one JSON line per request
// with the route, pod, status, source, bytes, moved-from and key hash; the text format; nothing
// at all when it is off.
#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "integration/proxy/proxy_harness.h"

namespace sticky::test {
namespace {

using json = nlohmann::json;

std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The file's lines once it has `n` of them (the proxy flushes every 100 ms), each parsed.
std::vector<json> awaitLines(const std::string& path, size_t n) {
  std::vector<std::string> lines;
  auto split = [&] {
    lines.clear();
    std::istringstream in(readAll(path));
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines.size() >= n;
  };
  bool enough = waitFor(split, 10s);
  REQUIRE_MESSAGE(enough, "the access log has " << lines.size() << " lines, expected " << n << ":\n"
                                                << readAll(path));
  CHECK(lines.size() == n);
  std::vector<json> parsed;
  for (auto& line : lines) {
    INFO("line: " << line);
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    REQUIRE(j.is_object());
    parsed.push_back(std::move(j));
  }
  return parsed;
}

RouteConfig appRoute(std::vector<EndpointConfig> endpoints) {
  RouteConfig r = stickyRoute("shop/chat", std::move(endpoints));
  r.match.path_prefix = "/app";
  r.on_missing_key = OnMissingKey::Reject;  // a request without client-id: 400 on the route
  return r;
}

double metric(uint16_t port, const std::string& name) {
  HttpClient c("127.0.0.1", port);
  auto res = c.get("/metrics");
  std::istringstream in(res.body);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  return -1;
}

TEST_CASE("access log - sticky, moved, 404, 400 and a malformed head, one JSON line each") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3");
  std::string log_path = dir.file("access.log");
  auto config = configOf(1, {appRoute({b1.endpoint(), b2.endpoint()})});
  ProxyProc proxy(dir, config, {"--access-log", log_path, "--metrics-listen", "127.0.0.1:0"});
  auto client = proxy.client();

  // 1. A sticky request, its query left out of the line.
  auto first = client.get("/app/cart?token=secret", {{"client-id", "alice"}});
  REQUIRE(first.status == 200);
  std::string pod = backendOf(first);
  std::string other = pod == "b1" ? "b2" : "b1";

  // 2. Its pod leaves the route: the session moves.
  config.version = 2;
  config.routes[0].endpoints = {pod == "b1" ? b2.endpoint() : b1.endpoint()};
  proxy.reload(config);
  auto moved = client.get("/app/cart", {{"client-id", "alice"}});
  REQUIRE(moved.status == 200);
  CHECK(backendOf(moved) == other);

  // 3. No route: the proxy's 404.
  auto none = client.get("/elsewhere", {{"client-id", "alice"}});
  CHECK(none.status == 404);

  // 4. The route requires the key: the proxy's 400, its exact bytes both ways.
  std::string request = "GET /app/x HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n";
  RawConnection raw("127.0.0.1", proxy.port());
  REQUIRE(raw.send(request));
  auto answer = raw.readUntilClose();
  CHECK(answer.status == 400);

  // 5. A head that is no HTTP: 400, no route.
  RawConnection garbage("127.0.0.1", proxy.port());
  REQUIRE(garbage.send("NOT HTTP\r\n\r\n"));
  CHECK(garbage.readUntilClose().status == 400);

  auto lines = awaitLines(log_path, 5);
  // Lines are written per worker: find each by what it says.
  auto find = [&](auto pred) -> const json& {
    for (auto& j : lines)
      if (pred(j)) return j;
    FAIL("no such line");
    return lines[0];
  };
  for (auto& j : lines) {
    INFO(j.dump());
    std::string time = j["time"];
    CHECK(time.size() == 24);  // 2026-12-05T10:00:00.123Z
    CHECK(time[10] == 'T');
    CHECK(time.back() == 'Z');
    CHECK(j["duration_ms"].is_number());
    CHECK(j["duration_ms"].get<double>() >= 0);
    CHECK(j["bytes_received"].get<uint64_t>() > 0);
    CHECK(j["bytes_sent"].get<uint64_t>() > 0);
  }
  std::string alice_hash;
  {
    const json& j = find([](const json& l) { return l["moved_from"] == "" && l["status"] == 200; });
    INFO(j.dump());
    CHECK(j["namespace"] == "shop");
    CHECK(j["stickyroute"] == "chat");
    CHECK(j["pod"] == pod);
    CHECK(j["source"] == "upstream");
    CHECK(j["method"] == "GET");
    CHECK(j["path"] == "/app/cart");  // no query by default
    alice_hash = j["key_hash"];
    CHECK(alice_hash.size() == 16);
    CHECK(j["bytes_sent"].get<uint64_t>() > first.body.size());
    CHECK(j.dump().find("alice") == std::string::npos);
    CHECK(j.dump().find("secret") == std::string::npos);
  }
  {
    const json& j = find([](const json& l) { return l["moved_from"] != ""; });
    INFO(j.dump());
    CHECK(j["moved_from"] == pod);
    CHECK(j["pod"] == other);
    CHECK(j["status"] == 200);
    CHECK(j["source"] == "upstream");
    CHECK(j["key_hash"] == alice_hash);  // the same session, the same hash
  }
  {
    const json& j = find([](const json& l) { return l["status"] == 404; });
    INFO(j.dump());
    CHECK(j["source"] == "proxy");
    CHECK(j["namespace"] == "");
    CHECK(j["stickyroute"] == "");
    CHECK(j["pod"] == "");
    CHECK(j["path"] == "/elsewhere");
    CHECK(j["key_hash"] == "");  // no route, so no session header to speak of
  }
  {
    const json& j = find([](const json& l) { return l["status"] == 400 && l["method"] == "GET"; });
    INFO(j.dump());
    CHECK(j["source"] == "proxy");
    CHECK(j["namespace"] == "shop");
    CHECK(j["stickyroute"] == "chat");
    CHECK(j["pod"] == "");
    CHECK(j["key_hash"] == "");
    CHECK(j["bytes_received"] == request.size());
    CHECK(j["bytes_sent"] == answer.data.size());
  }
  {
    const json& j = find([](const json& l) { return l["status"] == 400 && l["method"] != "GET"; });
    INFO(j.dump());
    CHECK(j["source"] == "proxy");
    CHECK(j["stickyroute"] == "");
  }
  CHECK(metric(proxy.metricsPort(), "sticky_access_log_dropped_total") == 0);
}

TEST_CASE("access log - text lines, the key and the query when asked for, written by shutdown") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2");
  std::string log_path = dir.file("access.log");
  ProxyProc proxy(dir, configOf(1, {appRoute({b1.endpoint()})}),
                  {"--access-log", log_path, "--access-log-format", "text", "--access-log-key",
                   "plain", "--access-log-path", "full"});
  auto client = proxy.client();
  REQUIRE(client.get("/app/x?q=1", {{"client-id", "bob \"the\" client"}}).status == 200);
  client.close();
  proxy.process().signal(SIGTERM);
  CHECK(proxy.process().wait(10s) == 0);
  std::string text = readAll(log_path);
  INFO(text);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(text.find(" info access namespace=shop stickyroute=chat pod=b1 status=200 "
                  "source=upstream duration_ms=") != std::string::npos);
  CHECK(text.find(" path=\"/app/x?q=1\" key=\"bob \\\"the\\\" client\"\n") != std::string::npos);
}

TEST_CASE("access log - off by default: no line anywhere") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2");
  ProxyProc proxy(dir, configOf(1, {appRoute({b1.endpoint()})}),
                  {"--metrics-listen", "127.0.0.1:0"});
  auto client = proxy.client();
  REQUIRE(client.get("/app/x", {{"client-id", "carol"}}).status == 200);
  CHECK(client.get("/nowhere", {{"client-id", "carol"}}).status == 404);
  CHECK(metric(proxy.metricsPort(), "sticky_access_log_dropped_total") == 0);
  proxy.process().signal(SIGTERM);
  CHECK(proxy.process().wait(10s) == 0);
  // stdout and stderr both go to the proxy's log: only its own lines are there.
  std::string log = proxy.log();
  INFO(log);
  CHECK(log.find("stickyroute") == std::string::npos);
  CHECK(log.find("carol") == std::string::npos);
}

}  // namespace
}  // namespace sticky::test
