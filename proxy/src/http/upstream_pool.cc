#include "http/upstream_pool.h"

#include <sys/socket.h>

#include <cerrno>

namespace sticky::proxy {

namespace {

/// True if the peer closed (or reset) the connection, or sent bytes nobody asked for: either
/// way the connection is not fit for a new request.
bool unusable(UpstreamConnection& conn) {
  auto& socket = conn.socket;
  if (!socket.is_open() || conn.buffer.size() != 0) return true;
  char byte;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n >= 0) return true;  // 0: orderly close; > 0: unsolicited bytes
  return errno != EAGAIN && errno != EWOULDBLOCK;
}

}  // namespace

void UpstreamConnection::close() {
  boost::system::error_code ignored;
  socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

std::unique_ptr<UpstreamConnection> UpstreamPool::acquire(EndpointId endpoint, TimePoint now,
                                                          std::chrono::milliseconds trusted) {
  auto it = idle_.find(endpoint);
  if (it == idle_.end()) return nullptr;
  auto& list = it->second;
  while (!list.empty()) {
    auto conn = std::move(list.back());
    list.pop_back();
    bool checked = conn->check_before_reuse || now - conn->idle_since >= trusted;
    if (checked ? !unusable(*conn) : conn->socket.is_open()) return conn;
    conn->close();
  }
  return nullptr;
}

void UpstreamPool::release(std::unique_ptr<UpstreamConnection> conn, TimePoint now,
                           uint32_t max_idle) {
  auto& list = idle_[conn->endpoint];
  if (list.size() >= max_idle || conn->buffer.size() != 0) {
    conn->close();
    return;
  }
  conn->idle_since = now;
  list.push_back(std::move(conn));
}

size_t UpstreamPool::prune(TimePoint now, std::chrono::milliseconds max_idle_time) {
  size_t closed = 0;
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& list = it->second;
    std::erase_if(list, [&](std::unique_ptr<UpstreamConnection>& conn) {
      if (now - conn->idle_since < max_idle_time && !unusable(*conn)) return false;
      conn->close();
      ++closed;
      return true;
    });
    it = list.empty() ? idle_.erase(it) : std::next(it);
  }
  return closed;
}

void UpstreamPool::clear() {
  for (auto& [id, list] : idle_)
    for (auto& conn : list) conn->close();
  idle_.clear();
}

size_t UpstreamPool::idle() const {
  size_t n = 0;
  for (auto& [id, list] : idle_) n += list.size();
  return n;
}

}  // namespace sticky::proxy
