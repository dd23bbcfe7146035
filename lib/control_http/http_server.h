#pragma once
// The small HTTP/1.1 server (Beast) behind the control endpoints of both binaries: the proxy's
// admin socket and metrics port, the operator's metrics and probe port. One strand serializes
// the acceptor and every connection; a handler turns a request into a response synchronously.
// Not for the proxy's forwarding path (no streaming, whole bodies in memory). Header-only
// (a template over the socket protocol); the library target is sticky_control_http.

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/result.h"

namespace sticky::control {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
/// Builds the response for a request that could not be read (413, 431, 400).
using ErrorResponder = std::function<HttpResponse(http::status, std::string_view message)>;

struct HttpOptions {
  uint64_t body_limit = 16 * 1024 * 1024;
  uint32_t header_limit = 64 * 1024;
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);  // per read and write
};

inline HttpResponse makeResponse(http::status status, std::string body,
                                 std::string_view content_type) {
  HttpResponse res{status, 11};
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

template <class Protocol>
class HttpServer : public std::enable_shared_from_this<HttpServer<Protocol>> {
 public:
  using Acceptor = net::basic_socket_acceptor<Protocol, net::any_io_executor>;
  using Stream = beast::basic_stream<Protocol, net::any_io_executor>;

  /// `acceptor` must be listening and use `strand` as its executor.
  HttpServer(net::any_io_executor strand, Acceptor acceptor, HttpHandler handler,
             ErrorResponder on_error, HttpOptions options)
      : strand_(std::move(strand)),
        acceptor_(std::move(acceptor)),
        handler_(std::move(handler)),
        on_error_(std::move(on_error)),
        options_(options) {}

  void start() {
    net::dispatch(strand_, [self = this->shared_from_this()] { self->accept(); });
  }

  void stop() {
    net::dispatch(strand_, [self = this->shared_from_this()] { self->closeAll(); });
  }

 private:
  class Session : public std::enable_shared_from_this<Session> {
   public:
    Session(std::shared_ptr<HttpServer> server, typename Stream::socket_type socket)
        : server_(std::move(server)), stream_(std::move(socket)) {}

    void read() {
      parser_.emplace();
      parser_->body_limit(server_->options_.body_limit);
      parser_->header_limit(server_->options_.header_limit);
      stream_.expires_after(server_->options_.idle_timeout);
      http::async_read_header(
          stream_, buffer_, *parser_,
          [self = this->shared_from_this()](beast::error_code ec, size_t) { self->onHeader(ec); });
    }

    void close() {
      beast::error_code ignored;
      stream_.socket().shutdown(net::socket_base::shutdown_both, ignored);
      stream_.close();
    }

   private:
    void onHeader(beast::error_code ec) {
      if (ec || parser_->is_done()) return onRead(ec);
      auto readBody = [self = this->shared_from_this()] {
        http::async_read(self->stream_, self->buffer_, *self->parser_,
                         [self](beast::error_code ec, size_t) { self->onRead(ec); });
      };
      // curl sends "Expect: 100-continue" before a large body and waits for the go-ahead.
      if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
        continue_.emplace(http::status::continue_, parser_->get().version());
        http::async_write(
            stream_, *continue_,
            [self = this->shared_from_this(), readBody](beast::error_code ec, size_t) {
              if (ec) return self->finish();
              readBody();
            });
        return;
      }
      readBody();
    }

    void onRead(beast::error_code ec) {
      if (server_->stopped_) return close();
      if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
          ec == net::error::operation_aborted) {
        return finish();
      }
      if (ec == http::error::body_limit) {
        return respondError(http::status::payload_too_large,
                            "the request body is larger than the limit of " +
                                std::to_string(server_->options_.body_limit) + " bytes");
      }
      if (ec == http::error::header_limit) {
        return respondError(http::status::request_header_fields_too_large,
                            "the request head is larger than the limit of " +
                                std::to_string(server_->options_.header_limit) + " bytes");
      }
      if (ec.category() == beast::error_code(http::error::bad_target).category()) {
        return respondError(http::status::bad_request,
                            "the request is not valid HTTP/1.1: " + ec.message());
      }
      if (ec) return finish();

      HttpRequest req = parser_->release();
      bool keep_alive = req.keep_alive();
      try {
        res_ = server_->handler_(req);
      } catch (const std::exception& e) {
        // The edge of the admin plane: a handler bug answers 500 instead of ending the process.
        res_ = server_->on_error_(http::status::internal_server_error,
                                  std::string("internal error: ") + e.what());
      }
      res_.version(req.version());
      res_.keep_alive(keep_alive);
      write(!keep_alive);
    }

    void respondError(http::status status, const std::string& message) {
      res_ = server_->on_error_(status, message);
      res_.keep_alive(false);
      write(true);
    }

    void write(bool close_after) {
      res_.prepare_payload();
      stream_.expires_after(server_->options_.idle_timeout);
      http::async_write(
          stream_, res_,
          [self = this->shared_from_this(), close_after](beast::error_code ec, size_t) {
            if (ec || close_after || self->server_->stopped_) return self->finish();
            self->read();
          });
    }

    void finish() {
      close();
      server_->sessions_.erase(this);
    }

    std::shared_ptr<HttpServer> server_;
    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    HttpResponse res_;
    std::optional<http::response<http::empty_body>> continue_;
  };

  void accept() {
    if (stopped_) return;
    acceptor_.async_accept(strand_, [self = this->shared_from_this()](
                                        beast::error_code ec, typename Stream::socket_type socket) {
      if (self->stopped_ || ec == net::error::operation_aborted ||
          ec == net::error::bad_descriptor) {
        return;
      }
      if (ec) {
        // Transient (EMFILE, ECONNABORTED): retry shortly instead of spinning.
        self->retry_timer_.expires_after(std::chrono::milliseconds(100));
        self->retry_timer_.async_wait([self](beast::error_code) { self->accept(); });
        return;
      }
      auto session = std::make_shared<Session>(self, std::move(socket));
      self->sessions_.emplace(session.get(), session);
      session->read();
      self->accept();
    });
  }

  void closeAll() {
    stopped_ = true;
    beast::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
    auto sessions = std::move(sessions_);
    sessions_.clear();
    for (auto& [raw, weak] : sessions) {
      if (auto s = weak.lock()) s->close();
    }
  }

  net::any_io_executor strand_;
  Acceptor acceptor_;
  HttpHandler handler_;
  ErrorResponder on_error_;
  HttpOptions options_;
  net::steady_timer retry_timer_{strand_};
  bool stopped_ = false;                                           // on the strand
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;  // on the strand
};

/// Opens, binds and listens a TCP acceptor on `strand` (port 0 picks one). The error is the
/// system's ("Address already in use"); the caller says what the port was for.
inline Result<HttpServer<net::ip::tcp>::Acceptor> listenTcp(net::any_io_executor strand,
                                                            const net::ip::tcp::endpoint& listen) {
  HttpServer<net::ip::tcp>::Acceptor acceptor(strand);
  beast::error_code ec;
  acceptor.open(listen.protocol(), ec);
  if (!ec) acceptor.set_option(net::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(listen, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail(ec.message());
  return Result<HttpServer<net::ip::tcp>::Acceptor>(std::move(acceptor));
}

}  // namespace sticky::control
