// The admin server in process: a real Unix socket, a real RouterHolder, the real AdminClient.
#include "server/admin_server.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <nlohmann/json.hpp>

#include "admin_api/admin_client.h"
#include "support/process.h"

namespace sticky::proxy {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

ProxyConfig chatConfig(uint64_t version) {
  ProxyConfig config;
  config.version = version;
  RouteConfig chat;
  chat.name = "shop/chat";
  chat.header = "client-id";
  chat.endpoints = {{"chat-0", "127.0.0.1", 18080, EndpointState::Active},
                    {"chat-1", "127.0.0.1", 18081, EndpointState::Active}};
  RouteConfig api;
  api.name = "shop/api";
  api.header = "x-user";
  api.match.path_prefix = "/api";
  api.endpoints = {{"api-0", "127.0.0.1", 19090, EndpointState::Draining}};
  config.routes = {chat, api};
  return config;
}

// A Unix socket fd connected to `path`, or -1.
int connectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// Writes `bytes` and reads until the server closes (or the 10 s receive timeout).
std::string rawExchange(const std::string& path, const std::string& bytes) {
  int fd = connectUnix(path);
  REQUIRE(fd >= 0);
  REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size()));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  ::close(fd);
  return out;
}

// A socket file at `path` that nobody listens on (as a crashed proxy leaves behind).
void makeStaleSocket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  ::close(fd);
}

struct AdminFixture {
  test::TempDir dir;
  std::string path = dir.file("admin.sock");
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work =
      boost::asio::make_work_guard(io);
  RouterHolder routers;
  ServerStats stats;
  std::unique_ptr<AdminServer> server;
  std::thread thread;
  admin::AdminClient client{path, 5s};

  AdminFixture() {
    AdminHooks hooks;
    hooks.routers = &routers;
    hooks.stats = &stats;
    // Like the Server's apply: the listen address cannot change at runtime.
    hooks.apply_config = [this](ProxyConfig config) -> Result<Ok, ConfigErrors> {
      if (!config.listen.empty()) {
        return unexpected(ConfigErrors{{"listen", "cannot change while the proxy runs"}});
      }
      auto applied = routers.apply(std::move(config), SteadyClock::now());
      if (applied.ok()) stats.config_applies++;
      return applied;
    };
    auto started = AdminServer::start(io, path, std::move(hooks));
    REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
    server = std::move(started).value();
    thread = std::thread([this] { io.run(); });
  }

  ~AdminFixture() {
    server.reset();
    work.reset();
    io.stop();
    thread.join();
  }

  const Route& route(std::string_view name) {
    auto router = routers.current();
    REQUIRE(router);
    const Route* r = router->findRoute(name);
    REQUIRE(r != nullptr);
    return *r;
  }
};

TEST_CASE("admin: health and readiness before and after the first config") {
  AdminFixture f;
  CHECK(f.client.healthy());
  CHECK_FALSE(f.client.ready());
  auto readyz = f.client.request("GET", "/readyz");
  REQUIRE(readyz.ok());
  CHECK(readyz->status == 503);
  CHECK(json::parse(readyz->body)["error"] == "no config loaded yet; PUT one to /v1/config");

  auto none = f.client.getConfig();
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  auto raw = f.client.request("GET", "/v1/config");
  REQUIRE(raw.ok());
  CHECK(raw->status == 404);
  CHECK(json::parse(raw->body)["error"] == "no config loaded yet");

  auto stats = f.client.stats();
  REQUIRE(stats.ok());
  CHECK_FALSE(stats->loaded);
  CHECK(stats->routes.empty());

  REQUIRE(f.client.putConfig(chatConfig(1)).ok());
  CHECK(f.client.ready());
}

TEST_CASE("admin: PUT /v1/config applies, GET returns it, stats describe it") {
  AdminFixture f;
  auto put = f.client.request("PUT", "/v1/config", toJsonString(chatConfig(3)));
  REQUIRE(put.ok());
  CHECK(put->status == 200);
  CHECK(put->content_type == "application/json");
  CHECK(json::parse(put->body) == json{{"applied", true}, {"version", 3}});
  CHECK(f.routers.loaded());
  CHECK(f.routers.current()->config().version == 3);

  auto got = f.client.getConfig();
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK(**got == f.routers.current()->config());

  REQUIRE(f.client.putConfig(chatConfig(4)).ok());
  got = f.client.getConfig();
  REQUIRE(got.ok());
  CHECK((*got)->version == 4);

  auto stats = f.client.stats();
  REQUIRE(stats.ok());
  CHECK(stats->loaded);
  CHECK(stats->config_version == 4);
  REQUIRE(stats->routes.size() == 2);
  const admin::RouteStatsView* chat = stats->findRoute("shop/chat");
  REQUIRE(chat != nullptr);
  REQUIRE(chat->endpoints.size() == 2);
  CHECK(chat->endpoints[0].name == "chat-0");
  CHECK(chat->endpoints[0].address == "127.0.0.1");
  CHECK(chat->endpoints[0].port == 18080);
  CHECK((chat->endpoints[0].state == EndpointState::Active));
  CHECK_FALSE(chat->endpoints[0].down);
  const admin::RouteStatsView* api = stats->findRoute("shop/api");
  REQUIRE(api != nullptr);
  CHECK((api->endpoints.at(0).state == EndpointState::Draining));
  // Without a shared table, no shared table figures.
  CHECK_FALSE(stats->shared_table.has_value());
  CHECK_FALSE(chat->shared_table.has_value());
  auto raw = f.client.request("GET", "/v1/stats");
  REQUIRE(raw.ok());
  CHECK(raw->body.find("sharedTable") == std::string::npos);
}

TEST_CASE("admin: an invalid config is refused with every error and the old one keeps serving") {
  AdminFixture f;
  REQUIRE(f.client.putConfig(chatConfig(5)).ok());

  json bad = json::parse(toJsonString(chatConfig(6)));
  bad["routes"][0]["ttl"] = "forever";
  bad["routes"][1]["header"] = "not a header";
  bad["routes"][1]["endpoints"][0]["port"] = 0;
  auto res = f.client.request("PUT", "/v1/config", bad.dump());
  REQUIRE(res.ok());
  CHECK(res->status == 400);
  json body = json::parse(res->body);
  REQUIRE(body["errors"].is_array());
  std::set<std::string> paths;
  for (const auto& e : body["errors"]) {
    paths.insert(e["path"].get<std::string>());
    CHECK_FALSE(e["message"].get<std::string>().empty());
  }
  CHECK(paths.count("routes[0].ttl") == 1);
  CHECK(paths.count("routes[1].header") == 1);
  CHECK(paths.count("routes[1].endpoints[0].port") == 1);

  // The client's error text carries the server's list.
  ProxyConfig invalid = chatConfig(6);
  invalid.routes[0].endpoints[1].name = invalid.routes[0].endpoints[0].name;
  invalid.routes[1].header = "bad header";
  auto put = f.client.putConfig(invalid);
  REQUIRE_FALSE(put.ok());
  CHECK(put.error().message.find("the proxy rejected the config") != std::string::npos);
  CHECK(put.error().code == admin::kRejected);
  CHECK(put.error().message.find("routes[0].endpoints[1]") != std::string::npos);
  CHECK(put.error().message.find("routes[1].header") != std::string::npos);

  auto not_json = f.client.request("PUT", "/v1/config", "{\"version\": ");
  REQUIRE(not_json.ok());
  CHECK(not_json->status == 400);
  CHECK(json::parse(not_json->body)["errors"].size() == 1);

  auto got = f.client.getConfig();
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->version == 5);
  CHECK(f.stats.config_rejects == 3);
  CHECK(f.client.ready());
}

TEST_CASE("admin: errors of the apply hook are reported as 400") {
  AdminFixture f;
  ProxyConfig config = chatConfig(1);
  config.listen = "127.0.0.1:1";
  auto put = f.client.putConfig(config);
  REQUIRE_FALSE(put.ok());
  CHECK(put.error().message.find("listen: cannot change while the proxy runs") !=
        std::string::npos);
  CHECK_FALSE(f.routers.loaded());
  CHECK_FALSE(f.client.ready());
}

TEST_CASE("admin: sessions dump, with limit and unknown route") {
  AdminFixture f;
  auto missing = f.client.sessions("shop/chat");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("no route named \"shop/chat\"") != std::string::npos);

  REQUIRE(f.client.putConfig(chatConfig(1)).ok());
  const Route& chat = f.route("shop/chat");
  TimePoint now = SteadyClock::now();
  std::map<std::string, std::string> placed;
  for (std::string key : {"alice", "bob", "carol", "dave"}) {
    RouteDecision d = chat.decide(key, now);
    REQUIRE(d.verdict == Verdict::Forward);
    placed[key] = d.endpoint->config().name;
  }

  auto dump = f.client.sessions("shop/chat");
  REQUIRE(dump.ok());
  CHECK(dump->route == "shop/chat");
  CHECK(dump->total == 4);
  REQUIRE(dump->sessions.size() == 4);
  for (const auto& s : dump->sessions) {
    REQUIRE(placed.count(s.key) == 1);
    CHECK(s.endpoint == placed[s.key]);
  }

  auto limited = f.client.sessions("shop/chat", 2);
  REQUIRE(limited.ok());
  CHECK(limited->total == 4);
  CHECK(limited->sessions.size() == 2);

  auto unknown = f.client.request("GET", "/v1/sessions?route=shop%2Fnope");
  REQUIRE(unknown.ok());
  CHECK(unknown->status == 404);
  CHECK(json::parse(unknown->body)["error"].get<std::string>().find("\"shop/nope\"") !=
        std::string::npos);

  for (std::string target :
       {"/v1/sessions", "/v1/sessions?route=shop/chat&limit=abc",
        "/v1/sessions?route=shop/chat&limit=100001", "/v1/sessions?route=shop/chat&limit=-1",
        "/v1/sessions?route=shop/chat&colour=red", "/v1/sessions?route=shop/chat&route=shop/api",
        "/v1/sessions?route=shop%2"}) {
    CAPTURE(target);
    auto res = f.client.request("GET", target);
    REQUIRE(res.ok());
    CHECK(res->status == 400);
    CHECK_FALSE(json::parse(res->body)["error"].get<std::string>().empty());
  }
}

TEST_CASE("admin: evict by key and by endpoint") {
  AdminFixture f;
  REQUIRE(f.client.putConfig(chatConfig(1)).ok());
  const Route& chat = f.route("shop/chat");
  TimePoint now = SteadyClock::now();
  const std::string odd_key = "a b/c&d=e+f%g\"h";
  std::map<std::string, std::string> placed;
  for (std::string key :
       {std::string("k1"), std::string("k2"), std::string("k3"), std::string("k4"), odd_key}) {
    RouteDecision d = chat.decide(key, now);
    REQUIRE(d.verdict == Verdict::Forward);
    placed[key] = d.endpoint->config().name;
  }
  REQUIRE(chat.table().size() == 5);

  auto one = f.client.evictKey("shop/chat", odd_key);
  REQUIRE_MESSAGE(one.ok(), (one.ok() ? "" : one.error().message));
  CHECK(*one == 1);
  CHECK_FALSE(chat.table().find(odd_key, now).has_value());
  auto again = f.client.evictKey("shop/chat", odd_key);
  REQUIRE(again.ok());
  CHECK(*again == 0);

  size_t on_chat0 = 0;
  for (const auto& [key, ep] : placed) on_chat0 += (key != odd_key && ep == "chat-0");
  auto many = f.client.evictEndpoint("shop/chat", "chat-0");
  REQUIRE(many.ok());
  CHECK(*many == on_chat0);
  CHECK(chat.table().size() == 4 - on_chat0);
  CHECK(chat.stats().admin_evictions == 1 + on_chat0);

  auto no_endpoint = f.client.evictEndpoint("shop/chat", "chat-9");
  REQUIRE_FALSE(no_endpoint.ok());
  CHECK(no_endpoint.error().message.find("no endpoint named \"chat-9\"") != std::string::npos);

  for (std::string target :
       {"/v1/sessions?route=shop/chat", "/v1/sessions?route=shop/chat&key=a&endpoint=chat-0",
        "/v1/sessions?route=shop/chat&limit=3"}) {
    CAPTURE(target);
    auto res = f.client.request("DELETE", target);
    REQUIRE(res.ok());
    CHECK(res->status == 400);
  }
}

TEST_CASE("admin: wrong method, unknown path, malformed request, oversized body") {
  AdminFixture f;
  auto post = f.client.request("POST", "/v1/config", "{}");
  REQUIRE(post.ok());
  CHECK(post->status == 405);
  CHECK(json::parse(post->body)["error"].get<std::string>().find("POST") != std::string::npos);
  auto del = f.client.request("DELETE", "/v1/stats");
  REQUIRE(del.ok());
  CHECK(del->status == 405);
  auto nowhere = f.client.request("GET", "/v2/everything");
  REQUIRE(nowhere.ok());
  CHECK(nowhere->status == 404);

  std::string garbage = rawExchange(f.path, "THIS IS NOT HTTP\r\n\r\n");
  CHECK(garbage.rfind("HTTP/1.1 400", 0) == 0);

  // The head announces 17 MiB: refused before the body is read.
  std::string big = rawExchange(f.path,
                                "PUT /v1/config HTTP/1.1\r\nHost: x\r\nContent-Length: 17825792\r\n"
                                "\r\n{");
  CHECK(big.rfind("HTTP/1.1 413", 0) == 0);
  CHECK(big.find("larger than the limit") != std::string::npos);

  // The client sends a whole oversized body: it still reads the server's 413.
  auto huge = f.client.request("PUT", "/v1/config", std::string(17 << 20, ' '));
  REQUIRE_MESSAGE(huge.ok(), (huge.ok() ? "" : huge.error().message));
  CHECK(huge->status == 413);
  CHECK(admin::errorMessageFromBody(huge->body, "") ==
        "the request body is larger than the limit of 16777216 bytes");

  // Still serving after all of that.
  CHECK(f.client.healthy());
}

TEST_CASE("admin: keep-alive serves several requests on one connection") {
  AdminFixture f;
  std::string two = rawExchange(f.path,
                                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  size_t first = two.find("HTTP/1.1 200");
  size_t second = two.find("HTTP/1.1 503");
  CHECK(first == 0);
  CHECK(second != std::string::npos);
  CHECK(second > first);
}

TEST_CASE("admin: Expect: 100-continue gets the go-ahead before the body (as curl sends it)") {
  AdminFixture f;
  std::string body = toJsonString(chatConfig(8));
  std::string reply = rawExchange(f.path,
                                  "PUT /v1/config HTTP/1.1\r\nHost: x\r\n"
                                  "Expect: 100-continue\r\nConnection: close\r\n"
                                  "Content-Length: " +
                                      std::to_string(body.size()) + "\r\n\r\n" + body);
  CHECK(reply.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", 0) == 0);
  CHECK(f.routers.current()->config().version == 8);
}

TEST_CASE("admin: socket file is mode 0600, replaced when stale, removed on stop") {
  test::TempDir dir;
  std::string path = dir.file("admin.sock");
  makeStaleSocket(path);
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  REQUIRE(S_ISSOCK(st.st_mode));
  REQUIRE(connectUnix(path) == -1);

  boost::asio::io_context io;
  RouterHolder routers;
  ServerStats stats;
  AdminHooks hooks{&routers, &stats,
                   [&](ProxyConfig c) { return routers.apply(std::move(c), SteadyClock::now()); }};
  auto started = AdminServer::start(io, path, hooks);
  REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
  std::thread thread([&] { io.run(); });

  REQUIRE(::lstat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(admin::AdminClient(path, 5s).healthy());

  // A second server must not steal a live socket.
  boost::asio::io_context io2;
  auto second = AdminServer::start(io2, path, hooks);
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().message.find("in use by another running process") != std::string::npos);
  CHECK(admin::AdminClient(path, 5s).healthy());

  (*started)->stop();
  CHECK(::lstat(path.c_str(), &st) != 0);
  thread.join();  // the server's work is gone, so run() returns
  started.value().reset();

  // A path held by a regular file is not taken over.
  test::writeFile(path, "not a socket");
  auto on_file = AdminServer::start(io, path, hooks);
  REQUIRE_FALSE(on_file.ok());
  CHECK(on_file.error().message.find("exists and is not a socket") != std::string::npos);
  CHECK(test::readFile(path) == "not a socket");
}

TEST_CASE("admin client: connection failures and timeouts are errors, not hangs") {
  test::TempDir dir;
  admin::AdminClient absent(dir.file("nothing.sock"), 2s);
  auto cfg = absent.getConfig();
  REQUIRE_FALSE(cfg.ok());
  CHECK(cfg.error().message.find("cannot connect to the proxy admin socket") != std::string::npos);
  CHECK(cfg.error().code == admin::kUnreachable);
  CHECK_FALSE(absent.ready());
  CHECK_FALSE(absent.healthy());
  CHECK_FALSE(absent.stats().ok());

  // A listener that never answers: the kernel completes the connect, nobody reads.
  std::string path = dir.file("silent.sock");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  admin::AdminClient silent(path, 300ms);
  auto stats = silent.stats();
  REQUIRE_FALSE(stats.ok());
  CHECK(stats.error().message.find("no answer within 300ms") != std::string::npos);
  ::close(fd);

  admin::AdminClient too_long(std::string(200, 'x'), 1s);
  CHECK_FALSE(too_long.stats().ok());
}

TEST_CASE("encodeQueryComponent escapes everything but unreserved characters") {
  CHECK(admin::encodeQueryComponent("shop/chat") == "shop%2Fchat");
  CHECK(admin::encodeQueryComponent("a b+c&d=e%") == "a%20b%2Bc%26d%3De%25");
  CHECK(admin::encodeQueryComponent("Az09-._~") == "Az09-._~");
}

}  // namespace
}  // namespace sticky::proxy
