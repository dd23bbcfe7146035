#include "controller/metrics_server.h"

#include <chrono>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include "control_http/http_server.h"

namespace sticky::op {
namespace {

namespace http = boost::beast::http;
using Tcp = boost::asio::ip::tcp;
using control::HttpRequest;
using control::HttpResponse;

HttpResponse textResponse(http::status status, std::string body) {
  return control::makeResponse(status, std::move(body), "text/plain; charset=utf-8");
}

HttpResponse errorText(http::status status, std::string_view message) {
  return textResponse(status, std::string(message) + "\n");
}

HttpResponse handle(const MetricsSources& sources, const HttpRequest& req) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  if (path != "/metrics" && path != "/healthz" && path != "/readyz") {
    return errorText(
        http::status::not_found,
        "no such path " + std::string(path) + "; this port serves /metrics, /healthz and /readyz");
  }
  if (req.method() != http::verb::get) {
    HttpResponse res = errorText(http::status::method_not_allowed, "use GET " + std::string(path));
    res.set(http::field::allow, "GET");
    return res;
  }
  if (path == "/healthz") {
    if (auto why = sources.unhealthy ? sources.unhealthy() : std::nullopt)
      return errorText(http::status::internal_server_error, *why);
    return textResponse(http::status::ok, "ok\n");
  }
  if (path == "/readyz") {
    if (auto why = sources.not_ready ? sources.not_ready() : std::nullopt)
      return errorText(http::status::service_unavailable, *why);
    return textResponse(http::status::ok, "ready\n");
  }
  metrics::Exposition x;
  if (sources.render) sources.render(x);
  return control::makeResponse(http::status::ok, x.take(), metrics::kContentType);
}

}  // namespace

struct MetricsServer::Impl {
  boost::asio::io_context io{1};
  uint16_t port = 0;
  MetricsSources sources;
  std::shared_ptr<control::HttpServer<Tcp>> http;
  std::thread thread;
  bool stopped = false;
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const Tcp::endpoint& listen,
                                                            MetricsSources sources) {
  auto impl = std::make_unique<Impl>();
  impl->sources = std::move(sources);
  boost::asio::any_io_executor strand = boost::asio::make_strand(impl->io);
  std::string where = listen.address().to_string() + ":" + std::to_string(listen.port());
  auto listening = control::listenTcp(strand, listen);
  if (!listening) {
    return fail("cannot listen for metrics on " + where + ": " + listening.error().message +
                "; choose another --metrics-listen, or 0 to turn it off");
  }
  control::HttpServer<Tcp>::Acceptor acceptor = std::move(listening).value();
  boost::system::error_code ec;
  impl->port = acceptor.local_endpoint(ec).port();
  control::HttpOptions options;
  options.body_limit = 64 * 1024;
  const MetricsSources* sources_ptr = &impl->sources;  // lives as long as the server
  impl->http = std::make_shared<control::HttpServer<Tcp>>(
      strand, std::move(acceptor),
      [sources_ptr](const HttpRequest& req) { return handle(*sources_ptr, req); }, &errorText,
      options);
  impl->http->start();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::make_unique<MetricsServer>(std::move(impl));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  stop();
}

uint16_t MetricsServer::port() const {
  return impl_->port;
}

void MetricsServer::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->http->stop();
  // The acceptor and connections close on the strand, and the loop runs out of work; a bounded
  // wait for that, then it is stopped regardless.
  for (int i = 0; i < 200 && !impl_->io.stopped(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace sticky::op
