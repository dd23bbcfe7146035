#pragma once
// The tunnel a 101 answer to an Upgrade request turns a connection into: raw bytes both ways
// until both directions have ended. End of input on one side is passed on as a half-close of
// the other; an error on either closes both sockets, which ends the other direction too. A tunnel
// with no byte moving either way for limits.tunnelIdleTimeout is closed (both sides).

#include <memory>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "http/downstream.h"
#include "http/upstream_pool.h"

namespace sticky::proxy {

/// One end of a tunnel: its socket, what was read from it but not yet parsed (sent on first),
/// and the kRelayPieceSize buffer its bytes are copied through.
struct TunnelEnd {
  boost::asio::ip::tcp::socket& socket;
  boost::beast::flat_buffer& leftover;
  char* piece;
};

/// The idle limit of a tunnel: `deadline` is re-armed with `timeout` whenever either direction
/// reads bytes; whoever sweeps the deadline cancels both sockets once it passes, which ends the
/// tunnel (the worker's sweep, for a client connection).
struct TunnelIdle {
  Deadline& deadline;
  Duration timeout;
};

/// Copies `client` -> `upstream` here and `upstream` -> `client` in a coroutine of its own on the
/// same executor (which holds `keep` until it ends); returns when both directions have ended.
/// `idle` (optional) must outlive the call.
boost::asio::awaitable<void> runTunnel(TunnelEnd client, TunnelEnd upstream,
                                       std::shared_ptr<void> keep, TunnelIdle* idle = nullptr);

/// The tunnel of a connection whose upstream `up` answered 101: counted in
/// ServerStats::tunnels_active while it lasts; the client connection stays alive through it.
/// No byte either way for limits.tunnel_idle_timeout closes both sides (counted in
/// ServerStats::tunnel_idle_timeouts).
boost::asio::awaitable<void> tunnel(Downstream& ds, UpstreamConnection& up,
                                    std::shared_ptr<void> keep);

}  // namespace sticky::proxy
