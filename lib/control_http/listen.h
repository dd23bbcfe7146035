#pragma once
// Listen addresses as both binaries take them on the command line.

#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "common/result.h"

namespace sticky::control {

/// "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0", "localhost:8080" -> an endpoint. Host names are
/// resolved (startup only). Error: one sentence naming the bad text.
Result<boost::asio::ip::tcp::endpoint> parseListenAddress(std::string_view text);

}  // namespace sticky::control
