#include "http/response_relay.h"

#include "http/headers.h"
#include "http/read_progress.h"
#include "http/tunnel.h"

// See connection.cc: GCC 12 at -O1 reports a false -Wmismatched-new-delete for Asio's coroutine
// frames.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace sticky::proxy {

namespace asio = boost::asio;
using error_code = boost::system::error_code;
template <class T>
using awaitable = asio::awaitable<T>;

namespace {

/// Gives `conn` back to the pool when the response ended cleanly and it may be reused.
void finishUpstream(Downstream& ds, std::unique_ptr<UpstreamConnection> conn, bool reusable) {
  ds.upstream = nullptr;
  if (reusable && ds.res_parser->is_done() && conn->buffer.size() == 0 && conn->socket.is_open()) {
    ++conn->exchanges;
    unsigned status = ds.res_head.status();
    conn->check_before_reuse = ds.head_request || status == 204 || status == 304;
    ds.ctx.pool().release(std::move(conn), SteadyClock::now(),
                          ds.limits.upstream_max_idle_per_endpoint);
  } else {
    conn->close();
  }
}

}  // namespace

awaitable<RelayEnd> relayBody(BodyRelay& r) {
  error_code ec;
  RelayEnd end;
  end.head_sent = r.head_out.empty();
  if (!end.head_sent && !r.parser.is_done() && r.upstream_buffer.size() == 0) {
    auto out = outBuffers(r.head_out, nullptr, 0);
    if (!sendNow(r.client, out, ec) && ec == asio::error::would_block)
      co_await sendRest(r.client, out, r.deadline, r.client_timeout, ec);
    size_t sent = r.head_out.size();
    r.head_out.clear();
    if (ec) {
      end.kind = RelayEnd::ClientGone;
      co_return end;
    }
    end.head_sent = true;
    end.bytes_sent += sent;
  }
  while (true) {
    size_t got = 0;
    if (!r.parser.is_done()) {
      r.parser.bodyBuffer(r.piece, kRelayPieceSize);
      r.deadline.arm(r.upstream_timeout);
      if (!parseBuffered(r.parser, r.upstream_buffer, ec))
        co_await readUntilProgress(r.upstream, r.upstream_buffer, r.parser, onError(ec));
      r.deadline.disarm();
      if (ec) {
        end.kind = RelayEnd::UpstreamFailed;
        co_return end;
      }
      got = kRelayPieceSize - r.parser.bodySpace();
    }
    bool last = r.parser.is_done();
    if (got == 0 && !last) continue;
    std::string_view suffix = r.chunked ? frameChunk(r.head_out, got, last) : "";
    if (!r.head_out.empty() || got != 0 || !suffix.empty()) {
      auto out = outBuffers(r.head_out, r.piece, got, suffix);
      if (!sendNow(r.client, out, ec) && ec == asio::error::would_block)
        co_await sendRest(r.client, out, r.deadline, r.client_timeout, ec);
      size_t sent = r.head_out.size() + got + suffix.size();
      r.head_out.clear();
      if (ec) {
        end.kind = RelayEnd::ClientGone;
        co_return end;
      }
      end.head_sent = true;
      end.bytes_sent += sent;
    }
    if (last) co_return end;
  }
}

ResponseStart startResponse(Downstream& ds, const Route& route, const Endpoint& endpoint,
                            UpstreamConnection& conn, const std::string& moved_from,
                            const HeaderNames& names) {
  ResponseStart start;
  unsigned status = ds.res_head.status();
  route.recordResponse(endpoint, static_cast<int>(status), ds.latency);
  if (ds.access_log) ds.access.upstream(endpoint.config().name, moved_from, status);
  bool tunnelling = ds.upgrade && status == 101;
  if (status == 101 && !ds.upgrade) {
    conn.close();
    ds.prepareLocal(localReply(LocalReason::UnaskedSwitch, endpoint.config().name), false);
    start.kind = ResponseStart::UnaskedSwitch;
    return start;
  }
  auto& res_parser = *ds.res_parser;
  start.upstream_reusable = res_parser.keep_alive() && !ds.upgrade;
  bool has_body = !res_parser.is_done();
  auto length = res_parser.content_length();

  ResponseHeadRewrite rewrite;
  rewrite.keep_upgrade = tunnelling;
  rewrite.session_moved_name = names.session_moved;
  rewrite.session_moved_value = moved_from;
  bool keep_alive = ds.canKeepAlive() && !tunnelling && !ds.ctx.draining();
  if (has_body) {
    if (res_parser.chunked() || !length) {
      if (ds.client_version >= 11) {
        start.chunked = true;
        rewrite.framing.kind = Framing::Chunked;
      } else {
        keep_alive = false;  // an HTTP/1.0 client reads the body until we close
      }
    } else {
      rewrite.framing = {Framing::Length, *length};
    }
  }
  if (!tunnelling) {
    if (!keep_alive)
      rewrite.connection = ConnectionHeader::Close;
    else if (ds.client_version == 10)
      rewrite.connection = ConnectionHeader::KeepAlive;
  }
  ds.head_out.clear();
  appendResponseHead(ds.head_out, ds.res_head, rewrite);
  start.keep_alive = keep_alive;
  start.kind = tunnelling ? ResponseStart::Tunnel : ResponseStart::Relay;
  return start;
}

bool finishResponse(Downstream& ds, const RelayEnd& end, const ResponseStart& start,
                    std::unique_ptr<UpstreamConnection> conn, const Endpoint& endpoint,
                    bool& reply) {
  reply = false;
  if (end.head_sent) ds.countUpstreamResponse();
  ds.access.bytes_sent += end.bytes_sent;
  switch (end.kind) {
    case RelayEnd::Done:
      finishUpstream(ds, std::move(conn), start.upstream_reusable);
      return start.keep_alive;
    case RelayEnd::ClientGone:
      if (ds.deadline.expired()) ds.countSendTimeout();
      conn->close();
      return false;
    case RelayEnd::UpstreamFailed:
      break;
  }
  conn->close();
  bool timeout = ds.deadline.expired();
  LocalReason reason = timeout ? LocalReason::ResponseBodyTimeout : LocalReason::ResponseBodyFailed;
  if (end.head_sent) {
    countLocal(ds.ctx.stats(), reason);
    return false;  // the response is cut short; closing tells the client
  }
  ds.prepareLocal(localReply(reason, endpoint.config().name,
                             timeout ? seconds(ds.limits.upstream_read_timeout) : std::string()),
                  false);
  reply = true;
  return false;
}

awaitable<void> tunnelResponse(Downstream& ds, std::unique_ptr<UpstreamConnection> conn) {
  error_code ec;
  auto out = outBuffers(ds.head_out, nullptr, 0);
  if (!sendNow(ds.client, out, ec) && ec == asio::error::would_block)
    co_await sendRest(ds.client, out, ds.deadline, ds.limits.client_send_timeout, ec);
  if (!ec) ds.access.bytes_sent += ds.head_out.size();
  ds.head_out.clear();
  if (ec && ds.deadline.expired()) ds.countSendTimeout();
  if (!ec) {
    ds.countUpstreamResponse();  // the 101
    co_await tunnel(ds, *conn, ds.owner.lock());
  }
  conn->close();
}

}  // namespace sticky::proxy
