#include "control_http/listen.h"

#include <charconv>
#include <string>

#include <boost/asio/io_context.hpp>

namespace sticky::control {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

Result<tcp::endpoint> parseListenAddress(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return fail("invalid listen address '" + std::string(text) + "': " + std::string(why));
  };
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("expected HOST:PORT such as 0.0.0.0:8080");
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) return bad("the host is empty; use 0.0.0.0 to listen on every address");
  unsigned port = 0;
  auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || r.ec != std::errc() || r.ptr != port_text.data() + port_text.size() ||
      port > 65535)
    return bad("the port must be a number from 0 to 65535");
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (!ec) return tcp::endpoint(address, static_cast<uint16_t>(port));
  asio::io_context io;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(std::string(host), std::string(port_text), ec);
  if (ec || results.empty()) return bad("cannot resolve host '" + std::string(host) + "'");
  return results.begin()->endpoint();
}

}  // namespace sticky::control
