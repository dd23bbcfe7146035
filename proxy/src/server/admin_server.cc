#include "server/admin_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <mutex>

#include <boost/asio/local/stream_protocol.hpp>
#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "config/model.h"
#include "control_http/http_server.h"
#include "routing/redis_store.h"

namespace sticky::proxy {

namespace {

namespace http = boost::beast::http;
using control::HttpRequest;
using control::HttpResponse;
using json = nlohmann::json;
using Local = boost::asio::local::stream_protocol;

constexpr size_t kDefaultSessionLimit = 100;
constexpr size_t kMaxSessionLimit = 100000;
constexpr uint64_t kMaxConfigBytes = 16 * 1024 * 1024;

// Session keys come from client headers and may hold any bytes: never let dump() throw on
// invalid UTF-8.
std::string dumpJson(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

HttpResponse jsonResponse(http::status status, const json& body) {
  return control::makeResponse(status, dumpJson(body) + "\n", "application/json");
}

HttpResponse errorResponse(http::status status, std::string_view message) {
  return jsonResponse(status, admin::errorToJson(message));
}

HttpResponse methodNotAllowed(const HttpRequest& req, std::string_view path,
                              std::string_view allow) {
  HttpResponse res =
      errorResponse(http::status::method_not_allowed,
                    "method " + std::string(req.method_string()) + " is not allowed on " +
                        std::string(path) + "; use " + std::string(allow));
  res.set(http::field::allow, allow);
  return res;
}

using Query = std::map<std::string, std::string, std::less<>>;

// Parses "a=1&b=2"; rejects bad escapes, repeated and unknown parameters.
Result<Query, std::string> parseQuery(std::string_view text,
                                      std::initializer_list<std::string_view> allowed) {
  Query query;
  while (!text.empty()) {
    size_t amp = text.find('&');
    std::string_view part = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    auto name = percentDecode(part.substr(0, eq));
    auto value =
        percentDecode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1));
    if (!name || !value) {
      return unexpected("query parameter \"" + std::string(part) +
                        "\" has an invalid percent-escape");
    }
    bool known = false;
    for (auto a : allowed) known = known || a == *name;
    if (!known) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return unexpected("unknown query parameter \"" + *name + "\"; this endpoint takes " + list);
    }
    if (!query.emplace(*name, *value).second) {
      return unexpected("query parameter \"" + *name + "\" is given more than once");
    }
  }
  return query;
}

const std::string* queryValue(const Query& q, std::string_view name) {
  auto it = q.find(name);
  return it == q.end() ? nullptr : &it->second;
}

uint64_t countedOf(const SessionCensus::RouteCount* counted, EndpointId id) {
  if (!counted) return 0;
  auto it = counted->by_endpoint.find(id);
  return it == counted->by_endpoint.end() ? 0 : it->second;
}

uint64_t load(const std::atomic<uint64_t>& counter) {
  return counter.load(std::memory_order_relaxed);
}

admin::SharedTableView sharedTableView(const RedisSessionStore& store) {
  admin::SharedTableView v;
  v.connected = store.connected();
  v.primary = store.primary();
  v.replica_id = store.replicaId();
  const redis::RedisStats& c = store.clientStats();
  v.commands = load(c.commands);
  v.errors = load(c.errors);
  v.timeouts = load(c.timeouts);
  v.rejected = load(c.rejected);
  v.connects = load(c.connects);
  v.connect_failures = load(c.connect_failures);
  v.latency_count = load(c.latency_count);
  v.latency_sum_us = load(c.latency_sum_us);
  const RedisStoreStats& t = store.stats();
  v.refreshed = load(t.refreshed);
  v.refresh_batches = load(t.refresh_batches);
  v.refresh_batch_keys = load(t.refresh_batch_keys);
  v.reasserted = load(t.reasserted);
  v.conflicts = load(t.conflicts);
  v.moves = load(t.moves);
  v.move_conflicts = load(t.move_conflicts);
  v.events_sent = load(t.events_sent);
  v.events_applied = load(t.events_applied);
  return v;
}

}  // namespace

admin::ProxyStats collectProxyStats(const Router* router, TimePoint now,
                                    const SessionCensus* census, const RedisSessionStore* redis) {
  admin::ProxyStats out;
  if (redis) out.shared_table = sharedTableView(*redis);
  if (!router) return out;
  out.loaded = true;
  if (census) out.sessions_scope = admin::SessionsScope::Cluster;
  out.config_version = router->config().version;
  for (const Route& route : router->routes()) {
    admin::RouteStatsView r;
    r.name = route.config().name;
    const RouteStats& rs = route.stats();
    StickTable& table = route.table();
    StickTableCounters counters = table.counters();
    r.local_sessions = table.size();
    const SessionCensus::RouteCount* counted = nullptr;
    if (census) {
      auto it = census->routes.find(r.name);
      if (it != census->routes.end()) counted = &it->second;
    }
    r.sessions = census ? (counted ? counted->total : 0) : r.local_sessions;
    r.requests = load(rs.requests);
    r.placements = load(rs.placements);
    r.moves = load(rs.moves);
    // The table counts LRU evictions; admin evictions are counted by the admin server.
    r.evictions = counters.evictions + load(rs.admin_evictions);
    r.expirations = counters.expirations;
    for (const Endpoint& ep : route.endpoints()) {
      admin::EndpointStatsView e;
      e.name = ep.config().name;
      e.address = ep.config().address;
      e.port = ep.config().port;
      e.state = ep.config().state;
      e.down = ep.isDown(now);
      e.sessions = census ? countedOf(counted, ep.id()) : table.sessionsOf(ep.id());
      e.requests = load(ep.stats().requests);
      r.endpoints.push_back(std::move(e));
    }
    if (route.store()) {
      const SharedTableStats& shared = route.sharedStats();
      r.shared_table = admin::RouteSharedView{load(shared.claims), load(shared.adopted),
                                              load(shared.unavailable), counters.unsynced};
    }
    out.routes.push_back(std::move(r));
  }
  return out;
}

struct AdminServer::Impl {
  std::string path;
  ino_t inode = 0;
  AdminHooks hooks;
  std::shared_ptr<control::HttpServer<Local>> http;
  std::atomic<bool> stopped{false};
  std::atomic<bool> unlinked{false};
  std::mutex handling;

  void removeSocketFile();
};

namespace {

HttpResponse putConfig(const AdminHooks& hooks, const HttpRequest& req);
HttpResponse getConfig(const AdminHooks& hooks);
HttpResponse getStats(const AdminHooks& hooks);
HttpResponse sessions(const AdminHooks& hooks, const HttpRequest& req, std::string_view query_text);

}  // namespace

HttpResponse handleAdminRequest(const AdminHooks& hooks, const HttpRequest& req) {
  std::string_view target = req.target();
  size_t qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  std::string_view query = qmark == std::string_view::npos ? "" : target.substr(qmark + 1);
  const auto method = req.method();

  if (path == "/healthz") {
    if (method != http::verb::get) return methodNotAllowed(req, path, "GET");
    return jsonResponse(http::status::ok, {{"status", "ok"}});
  }
  if (path == "/readyz") {
    if (method != http::verb::get) return methodNotAllowed(req, path, "GET");
    if (!hooks.routers->loaded()) {
      return errorResponse(http::status::service_unavailable,
                           "no config loaded yet; PUT one to /v1/config");
    }
    return jsonResponse(http::status::ok, {{"ready", true}});
  }
  if (path == "/v1/config") {
    if (method == http::verb::put) return putConfig(hooks, req);
    if (method == http::verb::get) return getConfig(hooks);
    return methodNotAllowed(req, path, "GET, PUT");
  }
  if (path == "/v1/stats") {
    if (method != http::verb::get) return methodNotAllowed(req, path, "GET");
    return getStats(hooks);
  }
  if (path == "/v1/sessions") {
    if (method != http::verb::get && method != http::verb::delete_) {
      return methodNotAllowed(req, path, "GET, DELETE");
    }
    return sessions(hooks, req, query);
  }
  return errorResponse(http::status::not_found,
                       "no admin endpoint at " + std::string(path) +
                           "; see /v1/config, /v1/stats, /v1/sessions, /healthz, /readyz");
}

namespace {

HttpResponse putConfig(const AdminHooks& hooks, const HttpRequest& req) {
  auto parsed = parseProxyConfig(req.body(), ConfigFormat::Json);
  if (!parsed.ok()) {
    hooks.stats->config_rejects.fetch_add(1, std::memory_order_relaxed);
    return jsonResponse(http::status::bad_request, admin::errorsToJson(parsed.error()));
  }
  uint64_t version = parsed->version;
  auto applied = hooks.apply_config(std::move(parsed).value());
  if (!applied.ok()) {
    return jsonResponse(http::status::bad_request, admin::errorsToJson(applied.error()));
  }
  return jsonResponse(http::status::ok, admin::toJson(admin::Applied{version}));
}

HttpResponse getConfig(const AdminHooks& hooks) {
  auto router = hooks.routers->current();
  if (!router) return errorResponse(http::status::not_found, "no config loaded yet");
  return jsonResponse(http::status::ok, toJson(router->config()));
}

HttpResponse getStats(const AdminHooks& hooks) {
  auto router = hooks.routers->current();
  // With a shared table the counts are cluster-wide: the store's latest census (a new one is
  // started when it is a few seconds old). Until the first one completes, this replica's own.
  std::shared_ptr<const SessionCensus> census;
  if (SessionStore* store = hooks.routers->store()) census = store->census();
  return jsonResponse(http::status::ok,
                      admin::toJson(collectProxyStats(router.get(), SteadyClock::now(),
                                                      census.get(), hooks.redis)));
}

HttpResponse sessions(const AdminHooks& hooks, const HttpRequest& req,
                      std::string_view query_text) {
  const bool is_get = req.method() == http::verb::get;
  auto query = is_get ? parseQuery(query_text, {"route", "limit"})
                      : parseQuery(query_text, {"route", "key", "endpoint"});
  if (!query.ok()) return errorResponse(http::status::bad_request, query.error());
  const std::string* route_name = queryValue(*query, "route");
  if (!route_name || route_name->empty()) {
    return errorResponse(http::status::bad_request,
                         "the query parameter route=NAMESPACE/NAME is required");
  }

  size_t limit = kDefaultSessionLimit;
  const std::string* key = nullptr;
  const std::string* endpoint_name = nullptr;
  if (is_get) {
    if (const std::string* text = queryValue(*query, "limit")) {
      const char* end = text->data() + text->size();
      auto [ptr, ec] = std::from_chars(text->data(), end, limit);
      if (text->empty() || ec != std::errc() || ptr != end || limit > kMaxSessionLimit) {
        return errorResponse(http::status::bad_request, "limit must be an integer from 0 to " +
                                                            std::to_string(kMaxSessionLimit) +
                                                            ", got \"" + *text + "\"");
      }
    }
  } else {
    key = queryValue(*query, "key");
    endpoint_name = queryValue(*query, "endpoint");
    if ((key == nullptr) == (endpoint_name == nullptr)) {
      return errorResponse(http::status::bad_request,
                           "give exactly one of key=SESSION_KEY or endpoint=ENDPOINT_NAME");
    }
  }

  auto router = hooks.routers->current();
  if (!router) {
    return errorResponse(http::status::not_found,
                         "no route named \"" + *route_name + "\": no config loaded yet");
  }
  const Route* route = router->findRoute(*route_name);
  if (!route) {
    return errorResponse(http::status::not_found, "no route named \"" + *route_name +
                                                      "\" in config version " +
                                                      configVersionHex(router->config().version));
  }
  StickTable& table = route->table();

  if (is_get) {
    admin::SessionDump dump;
    dump.route = route->config().name;
    dump.total = table.size();
    for (SessionEntry& entry : table.dump(limit, SteadyClock::now())) {
      std::string_view name = route->endpointName(entry.endpoint);
      dump.sessions.push_back({std::move(entry.key),
                               name.empty() ? std::string("(unknown)") : std::string(name),
                               static_cast<uint64_t>(entry.idle.count())});
    }
    return jsonResponse(http::status::ok, admin::toJson(dump));
  }

  uint64_t evicted = 0;
  if (key) {
    evicted = route->evict(*key) ? 1 : 0;
  } else {
    const Endpoint* ep = route->findEndpoint(std::string_view(*endpoint_name));
    if (!ep) {
      return errorResponse(
          http::status::not_found,
          "route \"" + *route_name + "\" has no endpoint named \"" + *endpoint_name + "\"");
    }
    evicted = route->evictEndpoint(ep->id());
  }
  route->stats().admin_evictions.fetch_add(evicted, std::memory_order_relaxed);
  return jsonResponse(http::status::ok, admin::toJson(admin::Evicted{evicted}));
}

}  // namespace

void AdminServer::Impl::removeSocketFile() {
  if (unlinked.exchange(true)) return;
  // Only remove the file if it is still ours (another process may have replaced it).
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == inode) {
    ::unlink(path.c_str());
  }
}

namespace {

// A socket file nobody listens on is stale and may be replaced; a live one belongs to another
// process and must not be stolen.
Result<Ok> clearStaleSocket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Ok{};
    return fail("cannot inspect admin socket path " + path + ": " + std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return fail("admin socket path " + path +
                " exists and is not a socket; remove it or choose another path");
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(std::string("cannot create a Unix socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  ::close(fd);
  if (rc == 0) {
    return fail("admin socket " + path + " is in use by another running process");
  }
  if (err != ECONNREFUSED && err != ENOENT) {
    return fail("cannot probe admin socket " + path + ": " + std::strerror(err));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return fail("cannot remove stale admin socket " + path + ": " + std::strerror(errno));
  }
  return Ok{};
}

}  // namespace

Result<std::unique_ptr<AdminServer>> AdminServer::start(boost::asio::io_context& io,
                                                        const std::string& path, AdminHooks hooks) {
  if (!hooks.routers || !hooks.stats || !hooks.apply_config) {
    return fail("admin server hooks are incomplete (routers, stats and apply_config are needed)");
  }
  if (path.empty()) return fail("the admin socket path is empty");
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return fail("admin socket path " + path + " is longer than the " +
                std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                " bytes a Unix socket path may have");
  }
  if (auto cleared = clearStaleSocket(path); !cleared.ok()) return unexpected(cleared.error());

  boost::asio::any_io_executor strand = boost::asio::make_strand(io);
  control::HttpServer<Local>::Acceptor acceptor(strand);
  boost::system::error_code ec;
  acceptor.open(Local(), ec);
  if (!ec) acceptor.bind(Local::endpoint(path), ec);
  if (ec) return fail("cannot bind admin socket " + path + ": " + ec.message());
  // Mode 0600 before listen(): until then no client can connect.
  if (::chmod(path.c_str(), 0600) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return fail("cannot set mode 0600 on admin socket " + path + ": " + std::strerror(err));
  }
  acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
  struct stat st {};
  if (!ec && ::lstat(path.c_str(), &st) != 0) ec.assign(errno, boost::system::system_category());
  if (ec) {
    ::unlink(path.c_str());
    return fail("cannot listen on admin socket " + path + ": " + ec.message());
  }

  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->inode = st.st_ino;
  impl->hooks = std::move(hooks);
  control::HttpOptions options;
  options.body_limit = kMaxConfigBytes;
  std::weak_ptr<Impl> weak = impl;
  impl->http = std::make_shared<control::HttpServer<Local>>(
      strand, std::move(acceptor),
      [weak](const HttpRequest& req) {
        auto self = weak.lock();
        if (!self) return errorResponse(http::status::service_unavailable, "shutting down");
        // Held while handling so that stop() returns only when no handler touches the hooks.
        std::lock_guard lock(self->handling);
        if (self->stopped) return errorResponse(http::status::service_unavailable, "shutting down");
        return handleAdminRequest(self->hooks, req);
      },
      &errorResponse, options);
  impl->http->start();
  return std::make_unique<AdminServer>(std::move(impl));
}

AdminServer::AdminServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() {
  stop();
}

void AdminServer::stop() {
  if (!impl_->stopped.exchange(true)) {
    impl_->http->stop();
    // Wait for a handler in progress on the io thread; later ones see `stopped`.
    std::lock_guard lock(impl_->handling);
  }
  impl_->removeSocketFile();
}

const std::string& AdminServer::path() const {
  return impl_->path;
}

}  // namespace sticky::proxy
