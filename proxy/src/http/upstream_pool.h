#pragma once
// Per-worker keep-alive pool of upstream connections, keyed by EndpointId. Single-threaded: it
// belongs to one worker's io_context, so it takes no lock.

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "routing/stick_table.h"

namespace sticky::proxy {

/// One connection to an upstream endpoint, with its read buffer.
struct UpstreamConnection {
  explicit UpstreamConnection(boost::asio::io_context& io, EndpointId id)
      : socket(io), endpoint(id) {}

  boost::asio::ip::tcp::socket socket;
  boost::beast::flat_buffer buffer;
  EndpointId endpoint;
  TimePoint idle_since{};
  uint64_t exchanges = 0;  // requests completed on this connection
  /// The last response ended with its head (HEAD, 204, 304): a backend that sends a body anyway
  /// sends it after the head, so the pool checks for such bytes before reusing the connection,
  /// however briefly it was idle (else they would be read as the next request's response).
  bool check_before_reuse = false;

  void close();
};

class UpstreamPool {
 public:
  UpstreamPool() = default;
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  /// The most recently used idle connection to `endpoint`, or null. One idle for `trusted` or
  /// longer, or marked check_before_reuse, is first checked for a close by the peer or bytes
  /// nobody asked for (a system call), and closed if it has either; a younger one is handed out
  /// unchecked, and the caller retries on a fresh connection if it turns out closed.
  std::unique_ptr<UpstreamConnection> acquire(EndpointId endpoint, TimePoint now,
                                              std::chrono::milliseconds trusted);
  /// Keeps `conn` for reuse unless `endpoint` already has `max_idle` idle connections.
  void release(std::unique_ptr<UpstreamConnection> conn, TimePoint now, uint32_t max_idle);
  /// Closes connections idle since before `now - max_idle_time` or closed by the peer.
  size_t prune(TimePoint now, std::chrono::milliseconds max_idle_time);
  void clear();
  size_t idle() const;

 private:
  std::unordered_map<EndpointId, std::vector<std::unique_ptr<UpstreamConnection>>> idle_;
};

}  // namespace sticky::proxy
