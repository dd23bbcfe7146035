// Fuzz target: the proxy's admin API request handling (handleAdminRequest in
// proxy/src/server/admin_server.h: paths, methods, query strings, config bodies), fed requests
// read by Beast's parser with the admin server's limits, one after another as on a keep-alive
// connection, against a proxy that has a route with sessions.
//
// Invariants:
//  - nothing throws out of the handler (the server would answer 500);
//  - every answer is one of 200, 400, 404, 405, 503 with a JSON object body, and a refusal
//    carries a message the operator's client can show (errorMessageFromBody); 405 says Allow;
//  - what the server writes, the operator's client reads (lib/admin_api): stats, session dumps
//    (no more sessions than the limit asked), applied, evicted;
//  - a config PUT and accepted is the config GET returns afterwards, and the version stats
//    report.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

#include "admin_api/admin_api.h"
#include "config/reader.h"
#include "fuzz_check.h"
#include "http/server_stats.h"
#include "routing/router.h"
#include "server/admin_server.h"

namespace {

namespace http = boost::beast::http;
namespace admin = sticky::admin;
using sticky::proxy::RouterHolder;
using sticky::proxy::SteadyClock;

constexpr std::string_view kConfig = R"({"version": 1, "routes": [{"name": "shop/chat",
  "header": "client-id", "endpoints": [
    {"name": "chat-0", "address": "10.0.0.5", "port": 8080},
    {"name": "chat-1", "address": "10.0.0.6", "port": 8080}]}]})";

// As proxy/src/server/admin_server.cc configures its HttpServer.
constexpr uint64_t kBodyLimit = 16 * 1024 * 1024;
constexpr uint32_t kHeaderLimit = 64 * 1024;

struct Proxy {
  RouterHolder routers;
  sticky::proxy::ServerStats stats;
  sticky::proxy::AdminHooks hooks;

  Proxy() {
    hooks.routers = &routers;
    hooks.stats = &stats;
    hooks.apply_config = [this](sticky::ProxyConfig config) {
      return routers.apply(std::move(config), SteadyClock::now());
    };
    auto config = sticky::parseProxyConfig(kConfig);
    FUZZ_CHECK(config.ok(), "the base config is refused");
    FUZZ_CHECK(routers.apply(std::move(*config), SteadyClock::now()).ok(), "apply failed");
    const auto* route = routers.current()->findRoute("shop/chat");
    for (std::string_view key : {"1", "2", "a b", "%41"})
      route->decide(std::optional<std::string_view>(key), SteadyClock::now());
  }
};

std::string_view pathOf(std::string_view target) {
  return target.substr(0, target.find('?'));
}

void checkAnswer(Proxy& proxy, const http::request<http::string_body>& req,
                 const http::response<http::string_body>& res) {
  unsigned status = res.result_int();
  FUZZ_CHECK(status == 200 || status == 400 || status == 404 || status == 405 || status == 503,
             "unexpected status " + std::to_string(status));
  FUZZ_CHECK(res[http::field::content_type] == "application/json", "not a JSON answer");
  auto body = admin::parseJson(res.body());
  FUZZ_CHECK(body.ok() && body->is_object(), "the body is not a JSON object: " + res.body());
  if (status == 405) FUZZ_CHECK(!res[http::field::allow].empty(), "405 without Allow");
  if (status != 200) {
    FUZZ_CHECK(!admin::errorMessageFromBody(res.body(), "").empty(),
               "a refusal the client cannot show: " + res.body());
    return;
  }
  std::string_view path = pathOf(req.target());
  auto router = proxy.routers.current();
  if (path == "/v1/stats") {
    auto stats = admin::statsFromJson(*body);
    FUZZ_CHECK(stats.ok(), "the client cannot read the stats: " + res.body());
    FUZZ_CHECK(stats->loaded && stats->config_version == router->config().version,
               "stats report another config version");
  } else if (path == "/v1/config" && req.method() == http::verb::get) {
    auto config = sticky::parseProxyConfig(res.body(), sticky::ConfigFormat::Json);
    FUZZ_CHECK(config.ok(), "the running config does not read back: " + res.body());
    FUZZ_CHECK(*config == router->config(), "GET /v1/config is not the running config");
  } else if (path == "/v1/config") {
    auto applied = admin::appliedFromJson(*body);
    FUZZ_CHECK(applied.ok(), "the client cannot read the applied answer");
    auto put = sticky::parseProxyConfig(req.body(), sticky::ConfigFormat::Json);
    FUZZ_CHECK(put.ok() && *put == router->config() && applied->version == put->version,
               "the config applied is not the config PUT");
  } else if (path == "/v1/sessions" && req.method() == http::verb::get) {
    auto dump = admin::sessionDumpFromJson(*body);
    FUZZ_CHECK(dump.ok(), "the client cannot read the session dump: " + res.body());
    FUZZ_CHECK(dump->sessions.size() <= dump->total, "more sessions dumped than the table has");
  } else if (path == "/v1/sessions") {
    FUZZ_CHECK(admin::evictedFromJson(*body).ok(), "the client cannot read the evicted answer");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Proxy proxy;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty()) {
    http::request_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(kBodyLimit);
    parser.header_limit(kHeaderLimit);
    boost::system::error_code ec;
    size_t used = parser.put(boost::asio::buffer(input.data(), input.size()), ec);
    FUZZ_CHECK(used <= input.size(), "the parser consumed more than it was given");
    if (ec || !parser.is_done()) break;  // the server answers 400, or waits, and closes
    input.remove_prefix(used);
    const auto& req = parser.get();
    try {
      auto res = sticky::proxy::handleAdminRequest(proxy.hooks, req);
      checkAnswer(proxy, req, res);
    } catch (const std::exception& e) {
      FUZZ_CHECK(false, std::string("an exception escaped the admin handler: ") + e.what());
    }
    if (!req.keep_alive()) break;
  }
  return 0;
}
