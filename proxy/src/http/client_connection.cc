#include "http/client_connection.h"

#include <exception>
#include <memory>
#include <string>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include "common/log.h"
#include "http/downstream.h"
#include "http/drain_aware_read.h"
#include "http/exchange.h"
#include "http/headers.h"
#include "http/read_progress.h"

// GCC 12 at -O1 (the sanitizer builds) inlines Asio's coroutine frame allocation, which takes its
// memory from ::operator new inside thread_info_base::allocate and gives it back through
// awaitable_frame_base::operator delete, and then reports -Wmismatched-new-delete for the pair.
// They do match (Asio's recycling allocator); the warning is a false positive for these files.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace sticky::proxy {

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
template <class T>
using awaitable = asio::awaitable<T>;

constexpr size_t kKeptHeadOutBytes = 8 * 1024;
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr size_t kLingerBytes = 256 * 1024;

class Connection final : public ClientConnection {
 public:
  Connection(ForwardingContext& ctx, tcp::socket socket) : ds_(ctx, std::move(socket)) {
    ctx.add(this);
    ctx.stats().connections_active.fetch_add(1, std::memory_order_relaxed);
  }

  ~Connection() override {
    ds_.ctx.remove(this);
    ds_.ctx.stats().connections_active.fetch_sub(1, std::memory_order_relaxed);
  }

  void closeIfIdle() override {
    if (idle_) ds_.closeClient();
  }

  void close() override {
    ds_.closeClient();
    if (ds_.upstream) ds_.upstream->close();
  }

  void checkDeadline(TimePoint now) override {
    if (!ds_.deadline.passed(now)) return;
    error_code ignored;
    ds_.client.cancel(ignored);
    if (ds_.upstream) ds_.upstream->socket.cancel(ignored);
  }

  Downstream& downstream() { return ds_; }
  awaitable<void> serve();

 private:
  /// Before waiting for a request: give back what an unusually large message made the buffers
  /// grow to, and the relay piece to the worker; arm the header (`first`) or keep-alive idle
  /// timeout.
  void becomeIdle(bool first);
  /// The idle wait ended without a request: a 408 on a connection's first, else just counted.
  awaitable<void> idleTimedOut(bool first);
  /// A new parser for the next request head.
  RequestHeadParser& startRequest();
  /// The head read failed (`ec`) or has too many fields (no `ec`): the reply, when one is due.
  awaitable<void> refuseHead(error_code ec);
  /// Matches the route for the parsed head: the route, or null with a reply prepared.
  const Route* route(std::shared_ptr<const Router>& router);
  awaitable<void> lingeringClose();
  /// The request's access log line (the log is on); `route` null when none matched; `unparsed`:
  /// bytes read but refused with the head.
  void logAccess(const Route* route, size_t unparsed = 0);

  Downstream ds_;
  bool idle_ = false;
};

// The waits of the request path are written out here, not in helper coroutines: a coroutine
// frame per step would cost more than the step (the failure paths have helpers of their own).
awaitable<void> Connection::serve() {
  bool first = true;
  while (ds_.client.is_open()) {
    ds_.limits = ds_.ctx.limits();
    error_code ec;
    if (ds_.buffer.size() == 0) {
      if (!first && ds_.ctx.draining()) break;
      becomeIdle(first);
      size_t n =
          co_await drainAwareReadSome(ds_.client, ds_.buffer.prepare(kReadSize), onError(ec));
      ds_.deadline.disarm();
      idle_ = false;
      if (ec) {
        if (ds_.deadline.expired()) co_await idleTimedOut(first);
        break;
      }
      ds_.buffer.commit(n);
    }
    auto& parser = startRequest();
    ds_.deadline.arm(ds_.limits.client_header_timeout);
    if (!parseBuffered(parser, ds_.buffer, ec))
      co_await readUntilProgress(ds_.client, ds_.buffer, parser, onError(ec));
    ds_.deadline.disarm();
    if (ec || ds_.req_head.fields().size() > ds_.limits.max_header_count) {
      co_await refuseHead(ec);
      if (ds_.access_log && ds_.access.status != 0) logAccess(nullptr, ds_.buffer.size());
      break;
    }
    std::shared_ptr<const Router> router;
    const Route* matched = route(router);
    bool keep_alive = false;
    if (matched)
      keep_alive = co_await forward(ds_, *router, *matched);
    else
      keep_alive = co_await ds_.sendLocal();
    if (ds_.access_log) logAccess(matched);
    ds_.upstream = nullptr;
    ds_.route = nullptr;  // `router` goes with this iteration
    if (!keep_alive) break;
    first = false;
  }
  if (ds_.linger && ds_.client.is_open()) co_await lingeringClose();
  ds_.closeClient();
}

void Connection::becomeIdle(bool first) {
  if (ds_.buffer.capacity() > 2 * kReadSize) ds_.buffer.shrink_to_fit();
  ds_.head_out.clearAndShrink(kKeptHeadOutBytes);
  ds_.releasePiece();
  ds_.req_head.release();
  ds_.res_head.release();
  idle_ = true;
  ds_.deadline.arm(first ? ds_.limits.client_header_timeout : ds_.limits.keep_alive_idle_timeout);
}

awaitable<void> Connection::idleTimedOut(bool first) {
  if (first) {
    ds_.prepareLocal(localReply(LocalReason::NoRequest, seconds(ds_.limits.client_header_timeout)),
                     false);
    co_await ds_.sendLocal();
  } else {
    countLocal(ds_.ctx.stats(), LocalReason::NoRequest);  // an idle keep-alive: no answer
  }
}

RequestHeadParser& Connection::startRequest() {
  auto& parser = ds_.parser.emplace(ds_.req_head);
  parser.header_limit(ds_.limits.max_header_bytes);
  ds_.res_parser.reset();
  ds_.route = nullptr;
  ds_.body_streamed = false;
  ds_.client_keep_alive = false;
  ds_.head_request = false;
  if (ds_.access_log) ds_.access.begin(SteadyClock::now());
  return parser;
}

awaitable<void> Connection::refuseHead(error_code ec) {
  if (!ec) {
    ds_.prepareLocal(
        localReply(LocalReason::TooManyFields, std::to_string(ds_.limits.max_header_count)), false);
  } else if (ds_.deadline.expired()) {
    ds_.prepareLocal(
        localReply(LocalReason::HeadTimeout, seconds(ds_.limits.client_header_timeout)), false);
  } else if (ec == http::error::header_limit) {
    ds_.prepareLocal(
        localReply(LocalReason::HeadTooLarge, std::to_string(ds_.limits.max_header_bytes)), false);
  } else if (isParseError(ec)) {
    ds_.prepareLocal(localReply(LocalReason::MalformedHead, ec.message()), false);
  } else {
    co_return;  // the client went away: nobody to answer
  }
  co_await ds_.sendLocal();
}

const Route* Connection::route(std::shared_ptr<const Router>& router) {
  const auto& req = ds_.req_head;
  ds_.client_version = req.version() >= 11 ? 11 : 10;
  ds_.client_keep_alive = ds_.parser->keep_alive();
  ds_.head_request = req.method() == http::verb::head;

  auto checked = checkRequestHead(req);
  if (!checked.ok()) {
    ds_.prepareLocal(checked.error(), false);
    return nullptr;
  }
  router = ds_.ctx.router();
  if (!router) {
    ds_.prepareLocal(localReply(LocalReason::NoConfig), ds_.canKeepAlive());
    return nullptr;
  }
  ds_.limits = router->config().limits;
  std::string_view target = req.target();
  std::string_view authority = targetAuthority(target);
  std::string_view host = hostWithoutPort(authority.empty() ? req[http::field::host] : authority);
  std::string_view path = targetPath(target);
  const Route* matched = router->match(host, path);
  if (!matched) {
    ds_.prepareLocal(localReply(LocalReason::NoRoute, host, path), ds_.canKeepAlive());
    return nullptr;
  }
  ds_.route = matched;
  const HeadField* key_field = req.find(matched->config().header);
  ds_.key = key_field ? std::optional<std::string_view>(key_field->value) : std::nullopt;
  return matched;
}

void Connection::logAccess(const Route* route, size_t unparsed) {
  const AccessRecord& record = ds_.access;
  auto elapsed =
      std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - record.start);
  AccessEntry entry;
  entry.time = LogClock::now() - std::chrono::duration_cast<LogClock::duration>(elapsed);
  entry.duration = elapsed;
  if (route) {
    entry.route = route->config().name;
    entry.key = ds_.key;
  }
  if (record.pod) entry.pod = *record.pod;
  entry.moved_from = record.moved_from;
  entry.method = ds_.req_head.methodString();
  entry.target = ds_.req_head.target();
  entry.status = record.status;
  entry.local = record.local;
  entry.bytes_received = (ds_.parser ? ds_.parser->consumed() : 0) + unparsed;
  entry.bytes_sent = record.bytes_sent;
  ds_.access_log->write(entry);
}

awaitable<void> Connection::lingeringClose() {
  // Closing with unread input makes the kernel send a reset, which can destroy the response
  // before the client reads it; so half-close, and read what still comes for a moment.
  error_code ec;
  ds_.client.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  ds_.deadline.arm(std::chrono::duration_cast<Duration>(kLingerTime));
  size_t drained = 0;
  char sink[4096];
  while (drained < kLingerBytes) {
    size_t n = co_await ds_.client.async_read_some(asio::buffer(sink), onError(ec));
    if (ec) break;
    drained += n;
  }
  ds_.deadline.disarm();
}

awaitable<void> runConnection(std::shared_ptr<Connection> conn) {
  co_await conn->serve();
}

}  // namespace

void spawnClientConnection(ForwardingContext& ctx, tcp::socket socket) {
  auto conn = std::make_shared<Connection>(ctx, std::move(socket));
  conn->downstream().owner = conn;
  asio::co_spawn(ctx.io(), runConnection(std::move(conn)), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      logError(std::string("connection ended by an unexpected exception: ") + ex.what());
    } catch (...) {
      logError("connection ended by an unexpected exception");
    }
  });
}

}  // namespace sticky::proxy
