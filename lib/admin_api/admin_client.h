#pragma once
// A blocking client for the proxy's admin API over its Unix socket (see server/admin_server.h
// for the endpoints). One connection per call, each call bounded by the timeout. Never throws;
// safe to use from several threads at once.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "admin_api/admin_api.h"
#include "common/result.h"
#include "config/proxy_config.h"

namespace sticky::admin {

/// Error::code of a failed call, for callers that branch on it:
///   kUnreachable  no HTTP answer (cannot connect, timeout, malformed reply)
///   kRejected     the proxy answered 4xx: it refused the request (e.g. an invalid config)
///   kFailed       any other status, or an answer that does not parse
inline constexpr char kUnreachable[] = "Unreachable";
inline constexpr char kRejected[] = "Rejected";
inline constexpr char kFailed[] = "Failed";

class AdminClient {
 public:
  AdminClient(std::string socket_path, std::chrono::milliseconds timeout);

  /// Applies `config`. On a 400 the error text lists every problem the proxy found.
  Result<Ok> putConfig(const ProxyConfig& config) const;
  /// The config being served; nullopt when the proxy is up but has none loaded yet.
  Result<std::optional<ProxyConfig>> getConfig() const;
  Result<admin::ProxyStats> stats() const;
  /// Up to `limit` sessions of `route` ("namespace/name").
  Result<admin::SessionDump> sessions(std::string_view route, size_t limit = 100) const;
  /// Evicts one session; returns how many were evicted (0 or 1).
  Result<uint64_t> evictKey(std::string_view route, std::string_view key) const;
  /// Evicts every session pinned to `endpoint`; returns how many.
  Result<uint64_t> evictEndpoint(std::string_view route, std::string_view endpoint) const;
  /// GET /readyz answered 200 (a config is loaded).
  bool ready() const;
  /// GET /healthz answered 200.
  bool healthy() const;

  struct Response {
    int status = 0;
    std::string content_type;
    std::string body;
  };
  /// One raw exchange, e.g. request("GET", "/v1/stats"). An error means no HTTP response
  /// (cannot connect, timeout, malformed reply); any status is a success here.
  Result<Response> request(std::string_view method, std::string_view target, std::string body = {},
                           std::string_view content_type = "application/json") const;

  const std::string& socketPath() const { return socket_path_; }

 private:
  std::string socket_path_;
  std::chrono::milliseconds timeout_;
};

/// Percent-encodes a query component (everything but unreserved characters).
std::string encodeQueryComponent(std::string_view text);

}  // namespace sticky::admin
