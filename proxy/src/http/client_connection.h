#pragma once
// The client connection loop of the forwarding path (Envoy's connection, as apart from its
// streams): wait for a request (keep-alive idle timeout, drain), read its head within
// client_header_timeout and the size limits, check it, match a route, and hand it to the exchange
// (exchange.h); loop while both sides keep the connection alive. When the proxy chose to close,
// it half-closes and reads what the client still sends for a moment (lingering close) so the
// last response is not lost to a reset.
//
//   idle ──bytes──> head ──parsed, checked, routed──> forward ──keep-alive──> idle
//     │timeout/drain  │timeout/too large/malformed       │local reply
//     v               v                                  v
//   close          408/431/400, linger, close          reply, keep-alive or linger + close

#include <boost/asio/ip/tcp.hpp>

#include "http/connection.h"

namespace sticky::proxy {

/// Serves `socket` on ctx's io_context until it closes (registered with ctx while it lives).
void spawnClientConnection(ForwardingContext& ctx, boost::asio::ip::tcp::socket socket);

}  // namespace sticky::proxy
