#include "controller/metrics_server.h"

#include <doctest/doctest.h>

#include <atomic>
#include <string>

#include <boost/asio/ip/address.hpp>

#include "support/http_client.h"

namespace sticky::op {
namespace {

TEST_CASE("operator metrics server: /metrics renders at scrape time - probes say why they fail") {
  std::atomic<int> scrapes{0};
  std::atomic<bool> hung{false};
  std::atomic<bool> synced{false};
  MetricsSources sources;
  sources.render = [&](metrics::Exposition& x) {
    x.family("scrapes_total", "counter", "Scrapes so far.");
    x.sample("scrapes_total", {}, static_cast<uint64_t>(++scrapes));
  };
  sources.unhealthy = [&]() -> std::optional<std::string> {
    if (hung) return std::string("the reconcile loop has made no progress for 300s");
    return std::nullopt;
  };
  sources.not_ready = [&]() -> std::optional<std::string> {
    if (!synced) return std::string("the informer caches have not synced yet");
    return std::nullopt;
  };
  const boost::asio::ip::tcp::endpoint any_port{boost::asio::ip::make_address("127.0.0.1"), 0};
  auto started = MetricsServer::start(any_port, sources);
  REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
  std::unique_ptr<MetricsServer> server = std::move(started).value();
  REQUIRE(server->port() != 0);

  test::HttpClient client("127.0.0.1", server->port());
  test::HttpResponse res = client.get("/metrics");
  REQUIRE(res.status == 200);
  CHECK(res.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(res.body ==
        "# HELP scrapes_total Scrapes so far.\n# TYPE scrapes_total counter\nscrapes_total 1\n");
  CHECK(client.get("/metrics").body.find("scrapes_total 2\n") != std::string::npos);

  CHECK(client.get("/healthz").status == 200);
  res = client.get("/readyz");
  CHECK(res.status == 503);
  CHECK(res.body == "the informer caches have not synced yet\n");
  synced = true;
  res = client.get("/readyz");
  CHECK(res.status == 200);
  CHECK(res.body == "ready\n");
  hung = true;
  res = client.get("/healthz");
  CHECK(res.status == 500);
  CHECK(res.body == "the reconcile loop has made no progress for 300s\n");
  CHECK(client.connectionsOpened() == 1);  // keep-alive across all of these

  CHECK(client.get("/other").status == 404);
  res = client.request("POST", "/metrics");
  CHECK(res.status == 405);
  CHECK(res.header("allow") == "GET");

  // The port is taken: a startup error that says what to do.
  auto clash = MetricsServer::start({boost::asio::ip::make_address("127.0.0.1"), server->port()},
                                    MetricsSources{});
  REQUIRE_FALSE(clash.ok());
  CHECK(clash.error().message.rfind("cannot listen for metrics on 127.0.0.1:", 0) == 0);
  CHECK(clash.error().message.find("--metrics-listen") != std::string::npos);

  server->stop();
  server->stop();  // idempotent
}

}  // namespace
}  // namespace sticky::op
