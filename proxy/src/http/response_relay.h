#pragma once
// The response's side of the forwarding path: rewrite the upstream's response head for the
// client, then relay the body through the connection's relay piece, framed for the client:
//
//   upstream body                      client gets
//   Content-Length: n                  Content-Length: n, the bytes as they come
//   chunked, or until close (1.1)      chunked, re-framed piece by piece
//   chunked, or until close (1.0)      the bytes, then the connection closes
//
// A 101 to an Upgrade request becomes a tunnel (tunnel.h). The upstream connection goes back to
// the pool when the response ended cleanly and both sides allow it.

#include <memory>
#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "http/downstream.h"
#include "routing/router.h"

namespace sticky::proxy {

/// The relay loop, over whatever sockets it is given (unit-tested over loopback pairs).
struct BodyRelay {
  boost::asio::ip::tcp::socket& upstream;
  boost::beast::flat_buffer& upstream_buffer;  // read from the upstream, not yet parsed
  ResponseHeadParser& parser;                  // past the head
  boost::asio::ip::tcp::socket& client;
  ByteBuffer& head_out;  // the response head still to send (empty if sent); chunk framing
  char* piece;           // kRelayPieceSize bytes
  bool chunked;          // re-frame the body as chunks for the client
  Deadline& deadline;
  Duration upstream_timeout;  // idle limit of the reads from the upstream
  Duration client_timeout;    // idle limit of a write to the client that has to wait
};

struct RelayEnd {
  enum Kind {
    Done,            // the response was relayed whole
    UpstreamFailed,  // the upstream failed or timed out (deadline.expired()) mid-body
    ClientGone,      // a write to the client failed or timed out (deadline.expired())
  };
  Kind kind = Done;
  bool head_sent = false;   // the client has seen the head (and maybe part of the body)
  uint64_t bytes_sent = 0;  // written to the client: head, body, chunk framing
};

/// Sends head_out (if not empty) and relays the rest of the response the parser is reading
/// (body pieces until the parser is done) to the client. The head goes out with the first body
/// piece, or alone at once when no body bytes are at hand (long polls, event streams see it now).
boost::asio::awaitable<RelayEnd> relayBody(BodyRelay& relay);

/// How a response goes on, once its head is in (startResponse).
struct ResponseStart {
  enum Kind {
    Relay,          // relayBody(), then finishResponse()
    Tunnel,         // a 101 to an Upgrade: tunnelResponse()
    UnaskedSwitch,  // a 101 nobody asked for: the connection is closed, a 502 prepared
  };
  Kind kind = Relay;
  bool keep_alive = false;         // the client connection, if the relay succeeds
  bool upstream_reusable = false;  // the upstream connection, if the response ends cleanly
  bool chunked = false;            // the body goes to the client chunked
};

/// The response head ds.res_head (ds.res_parser has read it from `conn`) arrived: records the
/// exchange on `route`, decides framing and keep-alive, and writes the client's head into
/// ds.head_out. No I/O.
ResponseStart startResponse(Downstream& ds, const Route& route, const Endpoint& endpoint,
                            UpstreamConnection& conn, const std::string& moved_from,
                            const HeaderNames& names);

/// The relay of a ResponseStart::Relay over ds and `conn`.
inline BodyRelay bodyRelay(Downstream& ds, UpstreamConnection& conn, bool chunked) {
  return {conn.socket,
          conn.buffer,
          *ds.res_parser,
          ds.client,
          ds.head_out,
          ds.piece(),
          chunked,
          ds.deadline,
          ds.limits.upstream_read_timeout,
          ds.limits.client_send_timeout};
}

/// After relayBody(): keep-alive for the client (true) or close (false); the upstream connection
/// goes back to the pool or is closed. `reply` is set when a local reply was prepared instead
/// (the upstream failed before the head went out): send it.
bool finishResponse(Downstream& ds, const RelayEnd& end, const ResponseStart& start,
                    std::unique_ptr<UpstreamConnection> conn, const Endpoint& endpoint,
                    bool& reply);

/// Sends the 101 head in ds.head_out and tunnels until both sides are done; the connection
/// closes after.
boost::asio::awaitable<void> tunnelResponse(Downstream& ds,
                                            std::unique_ptr<UpstreamConnection> conn);

}  // namespace sticky::proxy
