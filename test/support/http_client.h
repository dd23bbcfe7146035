#pragma once
// Blocking HTTP/1.1 and WebSocket clients for tests (Beast underneath). Every call has a timeout,
// so a test never hangs on a silent server; failures come back in `error`, not as exceptions.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace sticky::test {

using Headers = std::vector<std::pair<std::string, std::string>>;
inline constexpr std::chrono::milliseconds kDefaultTimeout = std::chrono::seconds(10);

struct HttpResponse {
  int status = 0;     // 0: no (complete) response; see `error`
  std::string error;  // empty on success
  Headers headers;    // in arrival order, names lower-case
  std::string body;   // empty when the body went to a stream callback
  uint64_t body_bytes = 0;
  bool keep_alive = false;

  bool ok() const { return error.empty() && status != 0; }
  /// First value of header `name` (any case), or "" when absent.
  std::string header(std::string_view name) const;
  bool has(std::string_view name) const;
  size_t count(std::string_view name) const;
  /// The body parsed as JSON; a JSON null if it is not JSON.
  nlohmann::json json() const;
};

/// One keep-alive connection to host:port, opened on first use and reopened after the server
/// closes it. Not thread-safe.
class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port, std::chrono::milliseconds timeout = kDefaultTimeout);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Sends one request (Host defaults to host:port; Content-Length set from `body` unless
  /// `headers` has Transfer-Encoding) and reads the whole response.
  HttpResponse request(std::string_view method, std::string_view target,
                       const Headers& headers = {}, std::string_view body = {});
  HttpResponse get(std::string_view target, const Headers& headers = {});

  /// Like request(), but hands the response body to `on_chunk` piece by piece (at most
  /// `piece_size` bytes each) instead of keeping it. `on_chunk` returning false aborts (and
  /// closes the connection). The timeout applies to each read, not to the whole body.
  HttpResponse stream(std::string_view method, std::string_view target, const Headers& headers,
                      std::string_view body, const std::function<bool(std::string_view)>& on_chunk,
                      size_t piece_size = 64 * 1024);

  /// Sends a body of `bytes` bytes of the downloadByte() pattern without holding it in memory,
  /// with Content-Length or (`chunked`) chunked encoding, and reads the whole response.
  HttpResponse upload(std::string_view target, const Headers& headers, uint64_t bytes,
                      bool chunked);

  bool connected() const;
  /// How many TCP connections this client has opened (1 while keep-alive holds).
  uint64_t connectionsOpened() const;
  void close();
  void setTimeout(std::chrono::milliseconds timeout);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// What a server answered to raw bytes.
struct RawResult {
  std::string data;     // everything received
  bool closed = false;  // the server closed (or reset) the connection
  int status = 0;       // status code of the first response line, 0 if none
  std::string error;    // connect/write failure
};

/// A raw TCP connection for requests no well-behaved client would send.
class RawConnection {
 public:
  RawConnection(std::string host, uint16_t port);  // connects; see error()
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  const std::string& error() const;
  bool send(std::string_view bytes);
  /// Reads until the server closes or `timeout` passes (then closed = false).
  RawResult readUntilClose(std::chrono::milliseconds timeout = kDefaultTimeout);
  /// Reads until `data` contains `needle`, the server closes, or `timeout` passes.
  RawResult readUntil(std::string_view needle, std::chrono::milliseconds timeout = kDefaultTimeout);
  /// Half-closes the sending side (the server sees EOF).
  void shutdownSend();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// Sends `bytes` on a fresh connection and reads until the server closes or `timeout` passes.
RawResult rawExchange(const std::string& host, uint16_t port, std::string_view bytes,
                      std::chrono::milliseconds timeout = kDefaultTimeout);

/// A WebSocket client connection (ws://host:port/target).
class WebSocketClient {
 public:
  WebSocketClient(std::string host, uint16_t port, std::string target, const Headers& headers = {},
                  std::chrono::milliseconds timeout = kDefaultTimeout);
  ~WebSocketClient();
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  bool open() const;
  const std::string& error() const;
  /// The server's answer to the upgrade request (101 on success).
  const HttpResponse& handshake() const;
  bool send(std::string_view message, bool binary = false);
  /// The next message, or nullopt on close, error or timeout.
  std::optional<std::string> receive();
  void close();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sticky::test
