#include "http/socket_io.h"

#include <algorithm>
#include <charconv>

namespace sticky::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

void advance(OutBuffers& bufs, size_t sent) {
  for (auto& b : bufs) {
    size_t n = std::min(sent, b.size());
    b += n;
    sent -= n;
  }
}

}  // namespace

bool sendNow(tcp::socket& socket, OutBuffers& bufs, error_code& ec) {
  ec = {};
  while (asio::buffer_size(bufs) != 0) {
    advance(bufs, socket.write_some(bufs, ec));
    if (ec) return false;
  }
  return true;
}

asio::awaitable<void> sendRest(tcp::socket& socket, OutBuffers& out, Deadline& deadline,
                               Duration limit, error_code& ec) {
  ec = {};
  while (!ec && asio::buffer_size(out) != 0) {
    deadline.arm(limit);
    advance(out, co_await socket.async_write_some(out, onError(ec)));
  }
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
