#pragma once
// The admin API over a Unix socket: config apply/get, stats, session dump/evict, health.
// HTTP/1.1 (Beast), JSON bodies whose shapes live in admin_client/admin_api.h.
//
//   PUT    /v1/config                         apply a ProxyConfig (JSON); 400 lists every error
//   GET    /v1/config                         the current config; 404 before one is loaded
//   GET    /v1/stats                          admin::ProxyStats
//   GET    /v1/sessions?route=NS/NAME&limit=N admin::SessionDump (limit default 100)
//   DELETE /v1/sessions?route=..&key=K        evict one session        -> {"evicted":N}
//   DELETE /v1/sessions?route=..&endpoint=E   evict all of an endpoint -> {"evicted":N}
//   GET    /healthz                           200 while the process serves
//   GET    /readyz                            200 once a config is loaded, else 503

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "admin_api/admin_api.h"
#include "common/result.h"
#include "config/proxy_config.h"
#include "http/server_stats.h"
#include "routing/router.h"

namespace sticky::proxy {

class RedisSessionStore;

struct AdminHooks {
  RouterHolder* routers = nullptr;
  ServerStats* stats = nullptr;
  /// Applies a parsed config (the Server's apply: it also checks `listen`). Called on the admin
  /// io_context's thread.
  std::function<Result<Ok, ConfigErrors>(ProxyConfig)> apply_config;
  /// The shared table, if the proxy runs one (its figures join GET /v1/stats).
  const RedisSessionStore* redis = nullptr;
};

class AdminServer {
 public:
  /// Listens on a Unix socket at `path` (a stale socket file is replaced, mode 0600) and serves
  /// on `io`. Fails if the path is taken by a non-socket file or cannot be bound.
  static Result<std::unique_ptr<AdminServer>> start(boost::asio::io_context& io,
                                                    const std::string& path, AdminHooks hooks);
  ~AdminServer();  // stops and removes the socket file
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  /// Stops accepting and closes open connections. Safe to call from any thread, more than once.
  void stop();
  const std::string& path() const;

  struct Impl;
  explicit AdminServer(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;
};

/// The admin API without the socket: the response to one request read whole (the handler the
/// server runs for each). Every request gets an answer with a JSON body; bad paths, methods,
/// queries and bodies get a 4xx that says what to send instead. Called with the hooks' thread
/// rules (apply_config on the admin io_context's thread); fuzz/admin_request_fuzz.cc calls it
/// directly.
boost::beast::http::response<boost::beast::http::string_body> handleAdminRequest(
    const AdminHooks& hooks,
    const boost::beast::http::request<boost::beast::http::string_body>& req);

/// The stats document of GET /v1/stats for `router` (null: no config loaded yet). With a census
/// (shared table), session counts are the census's (cluster-wide) and each route's
/// localSessions this proxy's. With `redis`, the shared table's figures are added.
admin::ProxyStats collectProxyStats(const Router* router, TimePoint now,
                                    const SessionCensus* census = nullptr,
                                    const RedisSessionStore* redis = nullptr);

}  // namespace sticky::proxy
