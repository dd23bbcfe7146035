#include "http/read_progress.h"

namespace sticky::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using error_code = boost::system::error_code;

bool isParseError(error_code ec) {
  if (ec.category() != http::make_error_code(http::error::bad_chunk).category()) return false;
  return ec != http::error::end_of_stream && ec != http::error::partial_message &&
         ec != http::error::need_more && ec != http::error::need_buffer &&
         ec != http::error::short_read && ec != http::error::stale_parser;
}

}  // namespace sticky::proxy
