#include "support/backend.h"

#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

namespace sticky::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

uint64_t fnv1a64(std::string_view data, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

namespace {

constexpr size_t kPiece = 64 * 1024;
constexpr size_t kBodySample = 4096;

std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      unsigned v = 0;
      auto r = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (r.ec == std::errc() && r.ptr == s.data() + i + 3) {
        out.push_back(static_cast<char>(v));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

struct Target {
  std::string path;
  std::string query;
  std::vector<std::pair<std::string, std::string>> params;

  std::optional<std::string> param(std::string_view name) const {
    for (auto& [k, v] : params)
      if (k == name) return v;
    return std::nullopt;
  }
  uint64_t number(std::string_view name, uint64_t fallback) const {
    auto v = param(name);
    if (!v) return fallback;
    uint64_t n = 0;
    auto r = std::from_chars(v->data(), v->data() + v->size(), n);
    return r.ec == std::errc() ? n : fallback;
  }
};

Target parseTarget(std::string_view target) {
  Target t;
  auto q = target.find('?');
  t.path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) return t;
  t.query = std::string(target.substr(q + 1));
  std::string_view rest = t.query;
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto part = rest.substr(0, amp);
    auto eq = part.find('=');
    if (eq == std::string_view::npos)
      t.params.emplace_back(percentDecode(part), "");
    else
      t.params.emplace_back(percentDecode(part.substr(0, eq)), percentDecode(part.substr(eq + 1)));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return t;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

// What sessions share with the Backend. The io_context and acceptor live in Backend itself so
// that stop() can destroy them, which destroys every pending handler and so every session.
struct Backend::Impl {
  std::string name;
  std::string address;
  uint16_t port = 0;
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> connections{0};
};

namespace {

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(beast::tcp_stream stream, std::string name)
      : ws_(std::move(stream)), name_(std::move(name)) {}

  template <class Request>
  void start(const Request& req) {
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
        [name = name_](websocket::response_type& res) { res.set("x-backend", name); }));
    ws_.async_accept(req, [self = shared_from_this()](error_code ec) {
      if (!ec) self->read();
    });
  }

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](error_code ec, size_t) {
      if (ec) return;
      self->ws_.text(self->ws_.got_text());
      self->ws_.async_write(self->buffer_.data(), [self](error_code ec, size_t) {
        if (ec) return;
        self->buffer_.consume(self->buffer_.size());
        self->read();
      });
    });
  }

  websocket::stream<beast::tcp_stream> ws_;
  std::string name_;
  beast::flat_buffer buffer_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Backend::Impl> backend)
      : stream_(std::move(socket)), backend_(std::move(backend)), timer_(stream_.get_executor()) {}

  void start() { readHeader(); }

 private:
  void readHeader() {
    parser_.emplace();
    parser_->header_limit(256 * 1024);
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    body_bytes_ = 0;
    body_hash_ = fnv1a64({});
    body_sample_.clear();
    stream_.expires_after(std::chrono::minutes(5));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (ec) return self->close();
                              self->onHeader();
                            });
  }

  void onHeader() {
    auto& req = parser_->get();
    Target t = parseTarget(req.target());
    if (t.path == "/ws" && websocket::is_upgrade(req)) {
      backend_->requests.fetch_add(1);
      auto ws = std::make_shared<WsSession>(std::move(stream_), backend_->name);
      ws->start(req);
      return;
    }
    readBody();
  }

  void readBody() {
    if (parser_->is_done()) return dispatch();
    auto& body = parser_->get().body();
    body.data = piece_.data();
    body.size = piece_.size();
    http::async_read(
        stream_, buffer_, *parser_, [self = shared_from_this()](error_code ec, size_t) {
          if (ec == http::error::need_buffer) ec = {};
          if (ec) return self->close();
          size_t got = self->piece_.size() - self->parser_->get().body().size;
          std::string_view chunk(self->piece_.data(), got);
          self->body_bytes_ += got;
          self->body_hash_ = fnv1a64(chunk, self->body_hash_);
          if (self->body_sample_.size() < kBodySample + 1)
            self->body_sample_.append(chunk.substr(0, kBodySample + 1 - self->body_sample_.size()));
          self->readBody();
        });
  }

  void dispatch() {
    backend_->requests.fetch_add(1);
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    target_ = parseTarget(req.target());
    const auto& path = target_.path;
    if (path == "/close") return close();
    if (path == "/download") return startDownload();
    if (path == "/slow") {
      timer_.expires_after(std::chrono::milliseconds(target_.number("ms", 0)));
      timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (ec) return self->close();
        self->respond(200);
      });
      return;
    }
    if (path.rfind("/status/", 0) == 0) {
      unsigned status = 0;
      auto digits = std::string_view(path).substr(8);
      auto r = std::from_chars(digits.data(), digits.data() + digits.size(), status);
      if (r.ec != std::errc() || r.ptr != digits.data() + digits.size() || status < 200 ||
          status > 599)
        return respond(400);
      return respond(status);
    }
    respond(200);
  }

  nlohmann::json describe() const {
    auto& req = parser_->get();
    nlohmann::json headers = nlohmann::json::object();
    for (auto& f : req) {
      auto name = lower(f.name_string());
      std::string value(f.value());
      if (headers.contains(name))
        headers[name] = headers[name].get<std::string>() + ", " + value;
      else
        headers[name] = value;
    }
    nlohmann::json j;
    j["backend"] = backend_->name;
    j["method"] = std::string(req.method_string());
    j["path"] = target_.path;
    j["query"] = target_.query;
    j["headers"] = std::move(headers);
    j["bodyBytes"] = body_bytes_;
    j["bodyHash"] = hex64(body_hash_);
    if (body_sample_.size() <= kBodySample) j["body"] = body_sample_;
    error_code ec;
    auto remote = stream_.socket().remote_endpoint(ec);
    if (!ec) j["remoteAddress"] = remote.address().to_string();
    return j;
  }

  template <class Response>
  void decorate(Response& res) {
    res.version(11);
    res.set("x-backend", backend_->name);
    for (auto& [k, v] : target_.params) {
      if (k != "set-header") continue;
      auto colon = v.find(':');
      if (colon == std::string::npos || colon == 0) continue;
      std::string_view value(v);
      value.remove_prefix(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      res.insert(v.substr(0, colon), value);
    }
    res.keep_alive(keep_alive_);
  }

  void respond(unsigned status) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->result(status);
    decorate(*res);
    bool no_body = status < 200 || status == 204 || status == 304;
    if (!no_body) {
      res->set(http::field::content_type, "application/json");
      res->body() = describe().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      res->prepare_payload();
      if (head_) res->body().clear();  // Content-Length stays: what a GET would get
    }
    stream_.expires_after(std::chrono::minutes(5));
    http::async_write(stream_, *res, [self = shared_from_this(), res](error_code ec, size_t) {
      if (ec) return self->close();
      self->afterResponse();
    });
  }

  void afterResponse() {
    if (keep_alive_) return readHeader();
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    close();
  }

  void startDownload() {
    remaining_ = target_.number("bytes", 0);
    offset_ = 0;
    download_.emplace();
    auto& res = *download_;
    res.result(http::status::ok);
    decorate(res);
    res.set(http::field::content_type, "application/octet-stream");
    if (target_.param("chunked") == "1")
      res.chunked(true);
    else
      res.content_length(remaining_);
    res.body().data = nullptr;
    res.body().more = remaining_ > 0;
    serializer_.emplace(res);
    stream_.expires_after(std::chrono::minutes(5));
    http::async_write_header(stream_, *serializer_,
                             [self = shared_from_this()](error_code ec, size_t) {
                               if (ec) return self->close();
                               if (self->head_) {
                                 self->serializer_.reset();
                                 self->download_.reset();
                                 return self->afterResponse();
                               }
                               self->writePiece();
                             });
  }

  void writePiece() {
    if (serializer_->is_done()) {
      serializer_.reset();
      download_.reset();
      return afterResponse();
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, piece_.size()));
    for (size_t i = 0; i < n; ++i) piece_[i] = downloadByte(offset_ + i);
    offset_ += n;
    remaining_ -= n;
    auto& body = download_->body();
    body.data = n ? piece_.data() : nullptr;
    body.size = n;
    body.more = remaining_ > 0;
    stream_.expires_after(std::chrono::minutes(5));
    http::async_write(stream_, *serializer_, [self = shared_from_this()](error_code ec, size_t) {
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return self->close();
      self->writePiece();
    });
  }

  void close() {
    error_code ignored;
    timer_.cancel();
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  std::shared_ptr<Backend::Impl> backend_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::buffer_body>> parser_;
  std::array<char, kPiece> piece_{};
  uint64_t body_bytes_ = 0;
  uint64_t body_hash_ = 0;
  std::string body_sample_;
  Target target_;
  bool keep_alive_ = true;
  bool head_ = false;
  uint64_t remaining_ = 0;
  uint64_t offset_ = 0;
  std::optional<http::response<http::buffer_body>> download_;
  std::optional<http::response_serializer<http::buffer_body>> serializer_;
};

}  // namespace

void Backend::accept() {
  acceptor_->async_accept([this](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
    if (!ec) {
      impl_->connections.fetch_add(1);
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), impl_)->start();
    }
    accept();
  });
}

Backend::Backend(std::string address, uint16_t port, std::string name)
    : impl_(std::make_shared<Impl>()),
      io_(std::make_unique<asio::io_context>(1)),
      acceptor_(std::make_unique<tcp::acceptor>(*io_)) {
  impl_->name = std::move(name);
  error_code ec;
  auto ip = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("backend: invalid address " + address);
  tcp::endpoint ep(ip, port);
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("backend: cannot listen on " + address + ":" + std::to_string(port) +
                             ": " + ec.message());
  auto local = acceptor_->local_endpoint();
  impl_->address = local.address().to_string();
  impl_->port = local.port();
  accept();
  thread_ = std::thread([io = io_.get()] { io->run(); });
}

Backend::~Backend() {
  stop();
}

void Backend::stop() {
  std::call_once(stopped_, [this] {
    io_->stop();
    if (thread_.joinable()) thread_.join();
    acceptor_.reset();
    io_.reset();  // destroys pending handlers, so every session and its socket
  });
}

const std::string& Backend::name() const {
  return impl_->name;
}
const std::string& Backend::address() const {
  return impl_->address;
}
uint16_t Backend::port() const {
  return impl_->port;
}
uint64_t Backend::requests() const {
  return impl_->requests.load();
}
uint64_t Backend::connections() const {
  return impl_->connections.load();
}

}  // namespace sticky::test
