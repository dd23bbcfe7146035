#include "admin_api/admin_client.h"

#include <sys/un.h>

#include <exception>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace sticky::admin {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = net::local::stream_protocol;

constexpr uint64_t kMaxResponseBytes = 256 * 1024 * 1024;

// One request/response exchange on a fresh connection, all of it under one deadline.
class Exchange {
 public:
  Exchange(const std::string& path, std::chrono::milliseconds timeout,
           http::request<http::string_body> req)
      : path_(path), timeout_(timeout), stream_(io_), req_(std::move(req)) {
    parser_.body_limit(kMaxResponseBytes);
  }

  Result<AdminClient::Response> run() {
    stream_.expires_after(timeout_);
    stream_.async_connect(Local::endpoint(path_), [this](beast::error_code ec) {
      if (ec) return done(ec, "cannot connect to the proxy admin socket " + path_);
      http::async_write(stream_, req_, [this](beast::error_code write_ec, size_t) {
        if (write_ec == beast::error::timeout) {
          return done(write_ec, "cannot send to the proxy admin socket " + path_);
        }
        // Even when the write failed, the server may have answered first (413 for a body over
        // its limit, then close): that answer says more than "broken pipe".
        http::async_read(stream_, buffer_, parser_, [this, write_ec](beast::error_code ec, size_t) {
          if (ec && write_ec)
            return done(write_ec, "cannot send to the proxy admin socket " + path_);
          if (ec) return done(ec, "no valid answer from the proxy admin socket " + path_);
          done({}, {});
        });
      });
    });
    io_.run();
    beast::error_code ignored;
    stream_.socket().shutdown(net::socket_base::shutdown_both, ignored);
    if (!error_.empty()) return fail(error_, kUnreachable);
    auto& res = parser_.get();
    AdminClient::Response out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    return out;
  }

 private:
  void done(beast::error_code ec, std::string context) {
    if (!ec) return;
    if (ec == beast::error::timeout) {
      error_ = context + ": no answer within " + std::to_string(timeout_.count()) + "ms";
    } else {
      error_ = context + ": " + ec.message();
    }
  }

  std::string path_;
  std::chrono::milliseconds timeout_;
  net::io_context io_;
  beast::basic_stream<Local> stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response_parser<http::string_body> parser_;
  std::string error_;
};

// "<what>: <the error the proxy sent>", coded kRejected for a 4xx, kFailed otherwise.
Unexpected<Error> statusError(const AdminClient::Response& res, std::string_view what) {
  std::string fallback = "HTTP " + std::to_string(res.status);
  return fail(std::string(what) + ": " + admin::errorMessageFromBody(res.body, fallback),
              res.status >= 400 && res.status < 500 ? kRejected : kFailed);
}

template <class T, class F>
Result<T> parseBody(const AdminClient::Response& res, std::string_view what, F from_json) {
  auto j = admin::parseJson(res.body);
  if (!j.ok()) return fail(std::string(what) + ": " + j.error().message, kFailed);
  auto parsed = from_json(*j);
  if (!parsed.ok()) {
    return fail(std::string(what) + ": unexpected answer: " + parsed.error().message, kFailed);
  }
  return std::move(parsed).value();
}

}  // namespace

std::string encodeQueryComponent(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

AdminClient::AdminClient(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}

Result<AdminClient::Response> AdminClient::request(std::string_view method, std::string_view target,
                                                   std::string body,
                                                   std::string_view content_type) const {
  if (socket_path_.empty() || socket_path_.size() >= sizeof(sockaddr_un::sun_path)) {
    return fail("admin socket path \"" + socket_path_ + "\" is empty or too long", kUnreachable);
  }
  try {
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, "sticky-proxy-admin");
    req.set(http::field::user_agent, "sticky-admin-client");
    if (!body.empty()) req.set(http::field::content_type, content_type);
    req.body() = std::move(body);
    req.keep_alive(false);
    req.prepare_payload();
    Exchange exchange(socket_path_, timeout_, std::move(req));
    return exchange.run();
  } catch (const std::exception& e) {
    return fail(std::string("admin request failed: ") + e.what(), kUnreachable);
  }
}

Result<Ok> AdminClient::putConfig(const ProxyConfig& config) const {
  std::string body;
  try {
    body = toJsonString(config);
  } catch (const std::exception& e) {
    return fail(std::string("cannot serialize the config: ") + e.what(), kFailed);
  }
  auto res = request("PUT", "/v1/config", std::move(body));
  if (!res.ok()) return unexpected(std::move(res).error());
  if (res->status == 400) return statusError(*res, "the proxy rejected the config");
  if (res->status != 200) return statusError(*res, "config apply failed");
  auto applied = parseBody<admin::Applied>(*res, "config apply", admin::appliedFromJson);
  if (!applied.ok()) return unexpected(std::move(applied).error());
  return Ok{};
}

Result<std::optional<ProxyConfig>> AdminClient::getConfig() const {
  auto res = request("GET", "/v1/config");
  if (!res.ok()) return unexpected(std::move(res).error());
  if (res->status == 404) return std::optional<ProxyConfig>();
  if (res->status != 200) return statusError(*res, "reading the config failed");
  auto parsed = parseProxyConfig(res->body, ConfigFormat::Json);
  if (!parsed.ok()) {
    return fail("the proxy's config does not parse: " + describe(parsed.error()), kFailed);
  }
  return std::optional<ProxyConfig>(std::move(parsed).value());
}

Result<admin::ProxyStats> AdminClient::stats() const {
  auto res = request("GET", "/v1/stats");
  if (!res.ok()) return unexpected(std::move(res).error());
  if (res->status != 200) return statusError(*res, "reading stats failed");
  return parseBody<admin::ProxyStats>(*res, "stats", admin::statsFromJson);
}

Result<admin::SessionDump> AdminClient::sessions(std::string_view route, size_t limit) const {
  auto res = request("GET", "/v1/sessions?route=" + encodeQueryComponent(route) +
                                "&limit=" + std::to_string(limit));
  if (!res.ok()) return unexpected(std::move(res).error());
  if (res->status != 200) return statusError(*res, "reading sessions failed");
  return parseBody<admin::SessionDump>(*res, "sessions", admin::sessionDumpFromJson);
}

Result<uint64_t> AdminClient::evictKey(std::string_view route, std::string_view key) const {
  auto res = request("DELETE", "/v1/sessions?route=" + encodeQueryComponent(route) +
                                   "&key=" + encodeQueryComponent(key));
  if (!res.ok()) return unexpected(std::move(res).error());
  if (res->status != 200) return statusError(*res, "evicting the session failed");
  auto evicted = parseBody<admin::Evicted>(*res, "evict", admin::evictedFromJson);
  if (!evicted.ok()) return unexpected(std::move(evicted).error());
  return evicted->evicted;
}

Result<uint64_t> AdminClient::evictEndpoint(std::string_view route,
                                            std::string_view endpoint) const {
  auto res = request("DELETE", "/v1/sessions?route=" + encodeQueryComponent(route) +
                                   "&endpoint=" + encodeQueryComponent(endpoint));
  if (!res.ok()) return unexpected(std::move(res).error());
  if (res->status != 200) return statusError(*res, "evicting the sessions failed");
  auto evicted = parseBody<admin::Evicted>(*res, "evict", admin::evictedFromJson);
  if (!evicted.ok()) return unexpected(std::move(evicted).error());
  return evicted->evicted;
}

bool AdminClient::ready() const {
  auto res = request("GET", "/readyz");
  return res.ok() && res->status == 200;
}

bool AdminClient::healthy() const {
  auto res = request("GET", "/healthz");
  return res.ok() && res->status == 200;
}

}  // namespace sticky::admin
