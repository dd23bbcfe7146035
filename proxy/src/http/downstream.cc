#include "http/downstream.h"

#include <boost/beast/http/write.hpp>

#include "http/drain_aware_read.h"
#include "http/read_progress.h"

// See connection.cc: GCC 12 at -O1 reports a false -Wmismatched-new-delete for Asio's coroutine
// frames.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace sticky::proxy {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

Downstream::Downstream(ForwardingContext& context, tcp::socket socket)
    : ctx(context), client(std::move(socket)), access_log(context.accessLog()) {
  error_code ec;
  auto remote = client.remote_endpoint(ec);
  if (!ec) client_ip = remote.address().to_string();
  client.set_option(tcp::no_delay(true), ec);
  client.non_blocking(true, ec);  // for sendNow(); asynchronous operations are unaffected
  enableDrainHint(client);
  head_out.reserve(1024);
}

Downstream::~Downstream() {
  releasePiece();
}

void Downstream::prepareLocal(const LocalReply& reply, bool keep_alive, std::string_view extra_name,
                              std::string_view extra_value) {
  countLocalReply(
      ctx.stats(),
      route ? route->stats().responses_from_proxy : ctx.stats().unrouted_proxy_responses,
      reply.reason);
  if (access_log) access.proxy(static_cast<unsigned>(reply.status()), extra_value);
  local_keep_alive_ = keep_alive && !ctx.draining();
  if (!local_keep_alive_) linger = true;
  local_.emplace(renderLocalReply(reply, {.keep_alive = local_keep_alive_,
                                          .client_version = client_version,
                                          .head_request = head_request,
                                          .extra_name = extra_name,
                                          .extra_value = extra_value}));
}

asio::awaitable<bool> Downstream::sendLocal() {
  error_code ec;
  deadline.arm(limits.client_send_timeout);
  size_t sent = co_await http::async_write(client, *local_, onError(ec));
  access.bytes_sent += sent;
  deadline.disarm();
  if (ec && deadline.expired()) countSendTimeout();
  local_.reset();
  co_return !ec && local_keep_alive_;
}

asio::awaitable<bool> Downstream::readBodyPiece(size_t offset, size_t& got) {
  parser->bodyBuffer(piece() + offset, kRelayPieceSize - offset);
  error_code ec;
  deadline.arm(limits.client_body_timeout);
  if (!parseBuffered(*parser, buffer, ec))
    co_await readUntilProgress(client, buffer, *parser, onError(ec));
  deadline.disarm();
  got = kRelayPieceSize - offset - parser->bodySpace();
  if (!ec) co_return true;
  // The client broke its own request body: timed out, malformed chunking, or went away.
  if (deadline.expired()) {
    prepareLocal(localReply(LocalReason::BodyStalled, seconds(limits.client_body_timeout)), false);
    co_await sendLocal();
  } else if (isParseError(ec)) {
    prepareLocal(localReply(LocalReason::MalformedBody, ec.message()), false);
    co_await sendLocal();
  }
  co_return false;
}

}  // namespace sticky::proxy
