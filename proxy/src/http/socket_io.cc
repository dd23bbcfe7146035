#include "http/socket_io.h"

#include <algorithm>
#include <charconv>

#include <boost/asio/write.hpp>

namespace sticky::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

bool sendNow(tcp::socket& socket, OutBuffers& bufs, error_code& ec) {
  ec = {};
  while (asio::buffer_size(bufs) != 0) {
    size_t sent = socket.write_some(bufs, ec);
    for (auto& b : bufs) {
      size_t n = std::min(sent, b.size());
      b += n;
      sent -= n;
    }
    if (ec) return false;
  }
  return true;
}

asio::awaitable<void> sendRest(tcp::socket& socket, OutBuffers& out, Deadline& deadline,
                               Duration limit, error_code& ec) {
  deadline.arm(limit);
  co_await asio::async_write(socket, out, onError(ec));
  deadline.disarm();
}

std::string_view frameChunk(ByteBuffer& prefix, size_t n, bool last) {
  if (n == 0) return last ? "0\r\n\r\n" : "";
  char digits[16];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n, 16);
  prefix.append(std::string_view(digits, end - digits));
  prefix.append("\r\n");
  return last ? "\r\n0\r\n\r\n" : "\r\n";
}

std::string seconds(Duration d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

}  // namespace sticky::proxy
