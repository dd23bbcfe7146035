#include "server/metrics.h"

#include <doctest/doctest.h>

#include <cctype>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>

#include "support/http_client.h"

namespace sticky::proxy {
namespace {

using namespace std::chrono_literals;

ProxyConfig twoRouteConfig() {
  ProxyConfig config;
  config.version = 42;
  RouteConfig chat;
  chat.name = "shop/chat";
  chat.header = "client-id";
  chat.endpoints = {{"chat-0", "127.0.0.1", 8080, EndpointState::Active},
                    {"chat-1", "127.0.0.1", 8081, EndpointState::Draining}};
  RouteConfig api;
  api.name = "shop/api";
  api.header = "x-user";
  api.match.path_prefix = "/api";
  api.endpoints = {{"api-0", "127.0.0.1", 9090, EndpointState::Active}};
  config.routes = {chat, api};
  return config;
}

// The sample key of `family` for route shop/`route`, with `more` labels after the route's.
std::string shop(std::string_view family, std::string_view route, std::string_view more = "") {
  std::string key =
      std::string(family) + R"({namespace="shop",stickyroute=")" + std::string(route) + "\"";
  if (!more.empty()) key += "," + std::string(more);
  return key + "}";
}

// Splits a sample line "name{k="v",...} value" into name and value, checking the text format's
// syntax (name characters, quoted label values with \\ \" \n escapes). False if malformed.
bool splitSample(const std::string& line, std::string& name, std::string& value) {
  auto nameStart = [](char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  };
  auto nameChar = [&](char c) {
    return nameStart(c) || std::isdigit(static_cast<unsigned char>(c));
  };
  size_t i = 0;
  if (line.empty() || !nameStart(line[0])) return false;
  while (i < line.size() && nameChar(line[i])) ++i;
  name = line.substr(0, i);
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      if (!nameStart(line[i]) || line[i] == ':') return false;
      while (i < line.size() && nameChar(line[i]) && line[i] != ':') ++i;
      if (line.compare(i, 2, "=\"") != 0) return false;
      i += 2;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\') {
          if (i + 1 >= line.size() ||
              std::string_view("\\\"n").find(line[i + 1]) == std::string_view::npos)
            return false;
          ++i;
        } else if (line[i] == '\n') {
          return false;
        }
        ++i;
      }
      if (i >= line.size()) return false;
      ++i;  // closing quote
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return false;
    ++i;  // closing brace
  }
  if (i >= line.size() || line[i] != ' ') return false;
  value = line.substr(i + 1);
  return !value.empty() && value.find(' ') == std::string::npos;
}

// Sample line "name{labels}" -> value, after checking the exposition's shape: every sample
// belongs to a family declared (HELP then TYPE) before it, and no family is declared twice.
std::map<std::string, std::string> parseExposition(const std::string& text) {
  std::map<std::string, std::string> samples;
  std::set<std::string> declared;
  std::map<std::string, std::string> types;
  std::istringstream in(text);
  std::string line;
  std::string last_help;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK_MESSAGE(declared.insert(name).second, "family declared twice: " << name);
      last_help = name;
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream parts(line.substr(7));
      std::string name, type;
      parts >> name >> type;
      CHECK(name == last_help);
      CHECK((type == "counter" || type == "gauge" || type == "histogram"));
      types[name] = type;
      continue;
    }
    std::string name, value;
    REQUIRE_MESSAGE(splitSample(line, name, value), "malformed sample line: " << line);
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s = suffix;
      if (!types.count(family) && family.size() > s.size() &&
          family.compare(family.size() - s.size(), s.size(), s) == 0) {
        family = family.substr(0, family.size() - s.size());
      }
    }
    CHECK_MESSAGE(types.count(family) == 1, "sample without a TYPE: " << line);
    std::string key = line.substr(0, line.rfind(' '));
    CHECK_MESSAGE(samples.emplace(key, value).second, "duplicate sample: " << key);
  }
  return samples;
}

TEST_CASE("renderMetrics without a config: server counters only, well-formed") {
  ServerStats stats;
  stats.connections_accepted = 5;
  stats.connections_active = 3;
  stats.bad_requests = 2;
  stats.config_rejects = 1;
  stats.unrouted_proxy_responses.count(404);
  stats.unrouted_proxy_responses.count(400);
  stats.unrouted_proxy_responses.count(503);
  std::string text = renderMetrics(nullptr, stats);
  auto samples = parseExposition(text);
  CHECK(samples.at("sticky_config_loaded") == "0");
  CHECK(text.find("sticky_config_info{") == std::string::npos);
  CHECK(samples.at("sticky_config_last_applied_timestamp_seconds") == "0");
  CHECK(samples.at("sticky_connections_accepted_total") == "5");
  CHECK(samples.at("sticky_connections_active") == "3");
  CHECK(samples.at("sticky_bad_requests_total") == "2");
  CHECK(samples.at("sticky_config_rejects_total") == "1");
  // The proxy's replies before any route matched.
  const std::string unrouted = R"(sticky_responses_total{namespace="",stickyroute="",code_class=")";
  CHECK(samples.at(unrouted + R"(4xx",source="proxy"})") == "2");
  CHECK(samples.at(unrouted + R"(5xx",source="proxy"})") == "1");
  CHECK(samples.at(unrouted + R"(2xx",source="proxy"})") == "0");
  CHECK(samples.count(unrouted + R"(2xx",source="upstream"})") == 0);
  CHECK(text.find("# TYPE sticky_upstream_responses_total counter") != std::string::npos);
  CHECK(text.find("sticky_requests_total") == std::string::npos);
  CHECK(text.find("sticky_sessions{") == std::string::npos);  // no route, no per-route series
  CHECK(text.find("pod=") == std::string::npos);
}

TEST_CASE("renderMetrics reports sessions, responses, latency and endpoint state per route") {
  TimePoint now = SteadyClock::now();
  auto built = Router::build(twoRouteConfig(), nullptr, now);
  REQUIRE(built.ok());
  const Router& router = **built;
  const Route* chat = router.findRoute("shop/chat");
  REQUIRE(chat != nullptr);
  const Endpoint* chat0 = chat->findEndpoint(std::string_view("chat-0"));
  const Endpoint* chat1 = chat->findEndpoint(std::string_view("chat-1"));
  REQUIRE(chat0 != nullptr);
  REQUIRE(chat1 != nullptr);

  // Two new keys: both land on chat-0, the only Active endpoint.
  for (std::string_view key : {"alice", "bob"}) {
    RouteDecision d = chat->decide(key, now);
    REQUIRE(d.verdict == Verdict::Forward);
    CHECK(d.endpoint == chat0);
  }
  chat->recordResponse(*chat0, 200, 3ms);      // bucket le=0.005
  chat->recordResponse(*chat0, 503, 2000ms);   // bucket le=2.5
  chat->recordResponse(*chat0, 204, 20000ms);  // only +Inf
  chat1->markDown(now + 10s);
  chat->stats().responses_from_upstream.count(200);
  chat->stats().responses_from_proxy.count(503);

  ServerStats stats;
  auto samples = parseExposition(renderMetrics(&router, stats, now));
  CHECK(samples.at("sticky_config_loaded") == "1");
  CHECK(samples.at(R"(sticky_config_info{hash="000000000000002a"})") == "1");
  CHECK(samples.at(shop("sticky_sessions", "chat")) == "2");
  CHECK(samples.at(shop("sticky_sessions", "api")) == "0");
  CHECK(samples.at(shop("sticky_endpoint_sessions", "chat", R"(pod="chat-0")")) == "2");
  CHECK(samples.at(shop("sticky_endpoint_sessions", "chat", R"(pod="chat-1")")) == "0");
  CHECK(samples.at(shop("sticky_sessions_placed_total", "chat")) == "2");
  CHECK(samples.at(shop("sticky_upstream_responses_total", "chat",
                        R"(pod="chat-0",code_class="2xx")")) == "2");
  CHECK(samples.at(shop("sticky_upstream_responses_total", "chat",
                        R"(pod="chat-0",code_class="5xx")")) == "1");
  CHECK(samples.at(shop("sticky_upstream_responses_total", "chat",
                        R"(pod="chat-1",code_class="2xx")")) == "0");
  CHECK(samples.at(shop("sticky_responses_total", "chat",
                        R"(code_class="2xx",source="upstream")")) == "1");
  CHECK(samples.at(shop("sticky_responses_total", "chat", R"(code_class="5xx",source="proxy")")) ==
        "1");
  CHECK(samples.at(shop("sticky_responses_total", "chat",
                        R"(code_class="5xx",source="upstream")")) == "0");
  CHECK(samples.at(
            shop("sticky_responses_total", "api", R"(code_class="2xx",source="upstream")")) == "0");
  CHECK(samples.at(shop("sticky_upstream_responses_total", "api",
                        R"(pod="api-0",code_class="4xx")")) == "0");

  // Histogram buckets are cumulative and end with +Inf == count.
  auto b = [](std::string_view le) {
    return shop("sticky_upstream_latency_seconds_bucket", "chat", "le=\"" + std::string(le) + "\"");
  };
  CHECK(samples.at(b("0.0025")) == "0");
  CHECK(samples.at(b("0.005")) == "1");
  CHECK(samples.at(b("1")) == "1");
  CHECK(samples.at(b("2.5")) == "2");
  CHECK(samples.at(b("10")) == "2");
  CHECK(samples.at(b("+Inf")) == "3");
  CHECK(samples.at(shop("sticky_upstream_latency_seconds_count", "chat")) == "3");
  CHECK(std::stod(samples.at(shop("sticky_upstream_latency_seconds_sum", "chat"))) ==
        doctest::Approx(22.003));
  CHECK(samples.at(shop("sticky_upstream_latency_seconds_count", "api")) == "0");

  CHECK(samples.at(shop("sticky_endpoint_up", "chat", R"(pod="chat-0")")) == "1");
  CHECK(samples.at(shop("sticky_endpoint_up", "chat", R"(pod="chat-1")")) == "0");
  CHECK(samples.at(shop("sticky_endpoint_draining", "chat", R"(pod="chat-1")")) == "1");
  CHECK(samples.at(shop("sticky_endpoint_draining", "chat", R"(pod="chat-0")")) == "0");

  // Evictions by reason, each counted once: admin (the admin server counts what the table
  // erased), capacity (the table's LRU under maxSessions), replica (another replica's event).
  CHECK(samples.at(shop("sticky_sessions_evicted_total", "chat", R"(reason="admin")")) == "0");
  chat->stats().admin_evictions += chat->table().eraseEndpoint(chat0->id());
  samples = parseExposition(renderMetrics(&router, stats, now));
  CHECK(samples.at(shop("sticky_sessions", "chat")) == "0");
  CHECK(samples.at(shop("sticky_sessions_evicted_total", "chat", R"(reason="admin")")) == "2");
  CHECK(samples.at(shop("sticky_sessions_evicted_total", "chat", R"(reason="capacity")")) == "0");
  CHECK(samples.at(shop("sticky_sessions_evicted_total", "chat", R"(reason="replica")")) == "0");
  CHECK(samples.at(shop("sticky_sessions_evicted_total", "api", R"(reason="admin")")) == "0");

  chat->table().setLimits(chat->config().ttl, 1);
  for (std::string_view key : {"carol", "dave", "erin"}) chat->decide(key, now);
  chat->stats().replica_evictions += 1;
  samples = parseExposition(renderMetrics(&router, stats, now));
  CHECK(samples.at(shop("sticky_sessions", "chat")) == "1");
  CHECK(samples.at(shop("sticky_sessions_evicted_total", "chat", R"(reason="capacity")")) == "2");
  CHECK(samples.at(shop("sticky_sessions_evicted_total", "chat", R"(reason="admin")")) == "2");
  CHECK(samples.at(shop("sticky_sessions_evicted_total", "chat", R"(reason="replica")")) == "1");
  CHECK(samples.count(shop("sticky_evictions_total", "chat")) == 0);
}

TEST_CASE("the exposition checker itself rejects malformed lines") {
  std::string name, value;
  CHECK(splitSample(R"(a_b{x="1",y="q\"\\\n"} 3)", name, value));
  CHECK(name == "a_b");
  CHECK(value == "3");
  CHECK_FALSE(splitSample(R"(a{x="1} 3)", name, value));
  CHECK_FALSE(splitSample(R"(a{x="\q"} 3)", name, value));
  CHECK_FALSE(splitSample("9a 3", name, value));
  CHECK_FALSE(splitSample("a 3 4", name, value));
  CHECK_FALSE(splitSample("a{x=1} 3", name, value));
}

TEST_CASE("label values are escaped") {
  CHECK(escapeLabelValue("plain") == "plain");
  CHECK(escapeLabelValue(R"(a\b"c)"
                         "\nd") == R"(a\\b\"c\nd)");
}

}  // namespace
}  // namespace sticky::proxy

namespace sticky::proxy {
namespace {

TEST_CASE("metrics server: /metrics, /healthz and /readyz over TCP") {
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  RouterHolder routers;
  ServerStats stats;
  stats.bad_requests = 7;
  auto started =
      MetricsServer::start(io, {boost::asio::ip::make_address("127.0.0.1"), 0}, routers, stats);
  REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
  std::unique_ptr<MetricsServer> server = std::move(started).value();
  REQUIRE(server->port() != 0);
  std::thread thread([&] { io.run(); });

  test::HttpClient client("127.0.0.1", server->port());
  test::HttpResponse res = client.get("/metrics");
  REQUIRE(res.status == 200);
  CHECK(res.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(parseExposition(res.body).at("sticky_bad_requests_total") == "7");
  CHECK(client.get("/healthz").status == 200);
  res = client.get("/readyz");
  CHECK(res.status == 503);
  CHECK(res.body == "no config loaded yet\n");

  REQUIRE(routers.apply(twoRouteConfig(), SteadyClock::now()).ok());
  CHECK(client.get("/readyz").status == 200);
  auto samples = parseExposition(client.get("/metrics").body);
  CHECK(samples.at(R"(sticky_config_info{hash="000000000000002a"})") == "1");
  CHECK(samples.at(shop("sticky_sessions", "api")) == "0");
  CHECK(client.connectionsOpened() == 1);  // keep-alive held across all of these

  CHECK(client.get("/other").status == 404);
  res = client.request("POST", "/metrics");
  CHECK(res.status == 405);
  CHECK(res.header("allow") == "GET");

  // A second server cannot take the same port.
  auto clash = MetricsServer::start(
      io, {boost::asio::ip::make_address("127.0.0.1"), server->port()}, routers, stats);
  REQUIRE_FALSE(clash.ok());
  CHECK(clash.error().message.find("cannot listen for metrics on 127.0.0.1:") == 0);

  server->stop();
  work.reset();
  thread.join();
}

}  // namespace
}  // namespace sticky::proxy

namespace sticky::proxy {
namespace {

TEST_CASE("renderMetrics has sticky_build_info, the process families, and le as Go writes it") {
  TimePoint now = SteadyClock::now();
  auto built = Router::build(twoRouteConfig(), nullptr, now);
  REQUIRE(built.ok());
  ServerStats stats;
  std::string text = renderMetrics(built->get(), stats, now);
  auto samples = parseExposition(text);
  bool build_info = false;
  for (const auto& [key, value] : samples) {
    if (key.rfind("sticky_build_info{version=\"0.2.0\",revision=\"", 0) == 0) {
      build_info = true;
      CHECK(value == "1");
    }
  }
  CHECK(build_info);
  for (const char* family :
       {"process_cpu_seconds_total", "process_resident_memory_bytes",
        "process_virtual_memory_bytes", "process_open_fds", "process_start_time_seconds"}) {
    INFO(family);
    REQUIRE(samples.count(family) == 1);
    CHECK(std::stod(samples.at(family)) >= 0);
  }
  CHECK(std::stod(samples.at("process_resident_memory_bytes")) > 0);
  // Go's spelling of the smallest latency bound (it was "5e-04" before the shared renderer).
  CHECK(samples.count(shop("sticky_upstream_latency_seconds_bucket", "chat", R"(le="0.0005")")) ==
        1);
  CHECK(text.find("e-04") == std::string::npos);
}

}  // namespace
}  // namespace sticky::proxy
