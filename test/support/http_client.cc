#include "support/http_client.h"

#include <sys/socket.h>

#include <array>
#include <cctype>
#include <charconv>
#include <limits>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "support/backend.h"

namespace sticky::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// Runs the io_context until the operation started by `start` completes; returns its error.
/// Timeouts come from the tcp_stream's expiry (beast::error::timeout).
template <class Start>
error_code runOp(asio::io_context& io, Start&& start) {
  error_code result = asio::error::would_block;
  start([&result](error_code ec, auto&&...) { result = ec; });
  io.restart();
  io.run();
  return result;
}

error_code connectStream(asio::io_context& io, beast::tcp_stream& stream, const std::string& host,
                         uint16_t port, std::chrono::milliseconds timeout) {
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  std::vector<tcp::endpoint> endpoints;
  if (!ec) {
    endpoints.emplace_back(address, port);
  } else {
    tcp::resolver resolver(io);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return ec;
    for (auto& r : results) endpoints.push_back(r.endpoint());
  }
  stream.expires_after(timeout);
  ec = runOp(io, [&](auto handler) { stream.async_connect(endpoints, handler); });
  if (!ec) stream.socket().set_option(tcp::no_delay(true), ec);
  return ec;
}

template <class Fields>
void copyHeaders(const Fields& fields, Headers& out) {
  for (auto& f : fields) out.emplace_back(lower(f.name_string()), std::string(f.value()));
}

bool hasHeader(const Headers& headers, std::string_view name) {
  for (auto& [k, v] : headers)
    if (iequals(k, name)) return true;
  return false;
}

/// True when the peer has closed (or reset) an idle connection.
bool peerClosed(tcp::socket& socket) {
  char byte;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
  return false;  // unexpected bytes; leave them for the next read
}

int statusOf(std::string_view data) {
  if (data.size() < 12 || data.substr(0, 5) != "HTTP/") return 0;
  auto sp = data.find(' ');
  if (sp == std::string_view::npos || sp + 4 > data.size()) return 0;
  int status = 0;
  auto r = std::from_chars(data.data() + sp + 1, data.data() + sp + 4, status);
  return r.ec == std::errc() ? status : 0;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

bool HttpResponse::has(std::string_view name) const {
  return hasHeader(headers, name);
}

size_t HttpResponse::count(std::string_view name) const {
  size_t n = 0;
  for (auto& [k, v] : headers)
    if (iequals(k, name)) ++n;
  return n;
}

nlohmann::json HttpResponse::json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

struct HttpClient::Impl {
  std::string host;
  uint16_t port;
  std::chrono::milliseconds timeout;
  asio::io_context io{1};
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  uint64_t opened = 0;

  bool isOpen() const { return stream && stream->socket().is_open(); }

  void close() {
    if (stream) {
      error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream->socket().close(ignored);
    }
    stream.reset();
    buffer.clear();
  }

  error_code ensureConnected() {
    if (isOpen() && !peerClosed(stream->socket())) return {};
    close();
    stream.emplace(io);
    ++opened;
    auto ec = connectStream(io, *stream, host, port, timeout);
    if (ec) close();
    return ec;
  }

  template <class Body>
  void prepare(http::request<Body>& req, std::string_view method, std::string_view target,
               const Headers& headers) {
    req.version(11);
    req.method_string(method);
    req.target(target);
    for (auto& [k, v] : headers) req.insert(k, v);
    if (!hasHeader(headers, "host")) req.set(http::field::host, host + ":" + std::to_string(port));
  }

  error_code write(auto& serializer_or_message) {
    stream->expires_after(timeout);
    return runOp(io,
                 [&](auto handler) { http::async_write(*stream, serializer_or_message, handler); });
  }

  HttpResponse fail(std::string what, error_code ec) {
    close();
    HttpResponse r;
    r.error = what + ": " + ec.message();
    return r;
  }

  template <class Parser>
  void finish(HttpResponse& r, Parser& parser) {
    auto& res = parser.get();
    r.status = static_cast<int>(res.result_int());
    copyHeaders(res, r.headers);
    r.keep_alive = res.keep_alive();
    if (!r.keep_alive) close();
  }

  HttpResponse readWhole(bool head) {
    http::response_parser<http::string_body> parser;
    parser.header_limit(1024 * 1024);
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    if (head) parser.skip(true);
    stream->expires_after(timeout);
    auto ec = runOp(io, [&](auto handler) { http::async_read(*stream, buffer, parser, handler); });
    if (ec) return fail("reading the response", ec);
    HttpResponse r;
    r.body = std::move(parser.get().body());
    r.body_bytes = r.body.size();
    finish(r, parser);
    return r;
  }
};

HttpClient::HttpClient(std::string host, uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->timeout = timeout;
}

HttpClient::~HttpClient() {
  impl_->close();
}

HttpResponse HttpClient::request(std::string_view method, std::string_view target,
                                 const Headers& headers, std::string_view body) {
  if (auto ec = impl_->ensureConnected()) return impl_->fail("connecting", ec);
  http::request<http::string_body> req;
  impl_->prepare(req, method, target, headers);
  req.body() = std::string(body);
  if (!hasHeader(headers, "transfer-encoding") && !hasHeader(headers, "content-length") &&
      (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH"))
    req.content_length(body.size());
  if (auto ec = impl_->write(req)) return impl_->fail("writing the request", ec);
  return impl_->readWhole(method == "HEAD");
}

HttpResponse HttpClient::get(std::string_view target, const Headers& headers) {
  return request("GET", target, headers);
}

HttpResponse HttpClient::stream(std::string_view method, std::string_view target,
                                const Headers& headers, std::string_view body,
                                const std::function<bool(std::string_view)>& on_chunk,
                                size_t piece_size) {
  auto& d = *impl_;
  if (auto ec = d.ensureConnected()) return d.fail("connecting", ec);
  http::request<http::string_body> req;
  d.prepare(req, method, target, headers);
  req.body() = std::string(body);
  if (!body.empty()) req.content_length(body.size());
  if (auto ec = d.write(req)) return d.fail("writing the request", ec);

  http::response_parser<http::buffer_body> parser;
  parser.header_limit(1024 * 1024);
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  if (method == "HEAD") parser.skip(true);
  d.stream->expires_after(d.timeout);
  auto ec = runOp(d.io, [&](auto h) { http::async_read_header(*d.stream, d.buffer, parser, h); });
  if (ec) return d.fail("reading the response head", ec);
  HttpResponse r;
  std::vector<char> piece(piece_size);
  while (!parser.is_done()) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    d.stream->expires_after(d.timeout);
    ec = runOp(d.io, [&](auto h) { http::async_read(*d.stream, d.buffer, parser, h); });
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return d.fail("reading the response body after " + std::to_string(r.body_bytes), ec);
    size_t got = piece.size() - parser.get().body().size;
    r.body_bytes += got;
    if (got && !on_chunk(std::string_view(piece.data(), got))) {
      d.close();
      r.error = "aborted by the reader";
      return r;
    }
  }
  d.finish(r, parser);
  return r;
}

HttpResponse HttpClient::upload(std::string_view target, const Headers& headers, uint64_t bytes,
                                bool chunked) {
  auto& d = *impl_;
  if (auto ec = d.ensureConnected()) return d.fail("connecting", ec);
  http::request<http::buffer_body> req;
  d.prepare(req, "POST", target, headers);
  if (chunked)
    req.chunked(true);
  else
    req.content_length(bytes);
  req.body().data = nullptr;
  req.body().more = true;
  http::request_serializer<http::buffer_body> sr(req);
  d.stream->expires_after(d.timeout);
  auto ec = runOp(d.io, [&](auto h) { http::async_write_header(*d.stream, sr, h); });
  if (ec) return d.fail("writing the request head", ec);
  std::vector<char> piece(64 * 1024);
  uint64_t offset = 0;
  while (!sr.is_done()) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(bytes - offset, piece.size()));
    for (size_t i = 0; i < n; ++i) piece[i] = downloadByte(offset + i);
    offset += n;
    req.body().data = n ? piece.data() : nullptr;
    req.body().size = n;
    req.body().more = offset < bytes;
    ec = d.write(sr);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return d.fail("writing the request body after " + std::to_string(offset), ec);
  }
  return d.readWhole(false);
}

bool HttpClient::connected() const {
  return impl_->isOpen();
}
uint64_t HttpClient::connectionsOpened() const {
  return impl_->opened;
}
void HttpClient::close() {
  impl_->close();
}
void HttpClient::setTimeout(std::chrono::milliseconds timeout) {
  impl_->timeout = timeout;
}

struct RawConnection::Impl {
  asio::io_context io{1};
  beast::tcp_stream stream{io};
  std::string error;
  std::string data;
  bool closed = false;

  RawResult result() const {
    RawResult r;
    r.data = data;
    r.closed = closed;
    r.status = statusOf(data);
    r.error = error;
    return r;
  }

  template <class Done>
  RawResult read(std::chrono::milliseconds timeout, Done done) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::array<char, 16 * 1024> buf;
    while (!closed && error.empty() && !done()) {
      stream.expires_at(deadline);
      size_t got = 0;
      error_code ec = asio::error::would_block;
      stream.async_read_some(asio::buffer(buf), [&](error_code e, size_t n) {
        ec = e;
        got = n;
      });
      io.restart();
      io.run();
      data.append(buf.data(), got);
      if (ec == beast::error::timeout) break;  // the stream closed itself; not the server
      if (ec == asio::error::eof || ec == asio::error::connection_reset)
        closed = true;
      else if (ec)
        error = "reading: " + ec.message();
    }
    return result();
  }
};

RawConnection::RawConnection(std::string host, uint16_t port) : impl_(std::make_unique<Impl>()) {
  if (auto ec = connectStream(impl_->io, impl_->stream, host, port, kDefaultTimeout))
    impl_->error = "connecting: " + ec.message();
}

RawConnection::~RawConnection() {
  error_code ignored;
  impl_->stream.socket().close(ignored);
}

const std::string& RawConnection::error() const {
  return impl_->error;
}

bool RawConnection::send(std::string_view bytes) {
  if (!impl_->error.empty()) return false;
  impl_->stream.expires_after(kDefaultTimeout);
  auto ec = runOp(impl_->io, [&](auto h) {
    asio::async_write(impl_->stream, asio::buffer(bytes.data(), bytes.size()), h);
  });
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
    impl_->closed = true;
    return false;
  }
  if (ec) impl_->error = "writing: " + ec.message();
  return !ec;
}

RawResult RawConnection::readUntilClose(std::chrono::milliseconds timeout) {
  return impl_->read(timeout, [] { return false; });
}

RawResult RawConnection::readUntil(std::string_view needle, std::chrono::milliseconds timeout) {
  return impl_->read(timeout, [&] { return impl_->data.find(needle) != std::string::npos; });
}

void RawConnection::shutdownSend() {
  error_code ignored;
  impl_->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

RawResult rawExchange(const std::string& host, uint16_t port, std::string_view bytes,
                      std::chrono::milliseconds timeout) {
  RawConnection c(host, port);
  if (!c.error().empty()) {
    RawResult r;
    r.error = c.error();
    return r;
  }
  c.send(bytes);
  return c.readUntilClose(timeout);
}

struct WebSocketClient::Impl {
  std::chrono::milliseconds timeout;
  asio::io_context io{1};
  websocket::stream<beast::tcp_stream> ws{io};
  beast::flat_buffer buffer;
  HttpResponse handshake;
  std::string error;
  bool open = false;
};

WebSocketClient::WebSocketClient(std::string host, uint16_t port, std::string target,
                                 const Headers& headers, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  auto& d = *impl_;
  d.timeout = timeout;
  auto& lowest = beast::get_lowest_layer(d.ws);
  if (auto ec = connectStream(d.io, lowest, host, port, timeout)) {
    d.error = "connecting: " + ec.message();
    return;
  }
  d.ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (auto& [k, v] : headers) req.set(k, v);
  }));
  websocket::response_type res;
  lowest.expires_after(timeout);
  auto ec = runOp(d.io, [&](auto h) {
    d.ws.async_handshake(res, host + ":" + std::to_string(port), target, h);
  });
  d.handshake.status = static_cast<int>(res.result_int());
  copyHeaders(res, d.handshake.headers);
  d.handshake.body = res.body();
  if (ec) {
    d.error = "handshake: " + ec.message();
    d.handshake.error = d.error;
    return;
  }
  d.open = true;
}

WebSocketClient::~WebSocketClient() {
  error_code ignored;
  beast::get_lowest_layer(impl_->ws).socket().close(ignored);
}

bool WebSocketClient::open() const {
  return impl_->open;
}
const std::string& WebSocketClient::error() const {
  return impl_->error;
}
const HttpResponse& WebSocketClient::handshake() const {
  return impl_->handshake;
}

bool WebSocketClient::send(std::string_view message, bool binary) {
  auto& d = *impl_;
  if (!d.open) return false;
  d.ws.binary(binary);
  beast::get_lowest_layer(d.ws).expires_after(d.timeout);
  auto ec = runOp(
      d.io, [&](auto h) { d.ws.async_write(asio::buffer(message.data(), message.size()), h); });
  if (ec) {
    d.open = false;
    d.error = "writing: " + ec.message();
  }
  return !ec;
}

std::optional<std::string> WebSocketClient::receive() {
  auto& d = *impl_;
  if (!d.open) return std::nullopt;
  beast::get_lowest_layer(d.ws).expires_after(d.timeout);
  auto ec = runOp(d.io, [&](auto h) { d.ws.async_read(d.buffer, h); });
  if (ec) {
    d.open = false;
    d.error = "reading: " + ec.message();
    return std::nullopt;
  }
  std::string message = beast::buffers_to_string(d.buffer.data());
  d.buffer.consume(d.buffer.size());
  return message;
}

void WebSocketClient::close() {
  auto& d = *impl_;
  if (!d.open) return;
  d.open = false;
  beast::get_lowest_layer(d.ws).expires_after(d.timeout);
  auto ec = runOp(d.io, [&](auto h) { d.ws.async_close(websocket::close_code::normal, h); });
  (void)ec;
}

}  // namespace sticky::test
