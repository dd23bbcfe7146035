#pragma once
// "Read until the parser makes progress": the one loop of the forwarding path that feeds a
// parser (request head, request body, response head, response body) from a socket.
//
// Progress is a head completed, body bytes delivered into the parser's body buffer (up to its
// size), the message finished, or a failure. Two halves so that the common case costs no
// coroutine frame: parseBuffered() parses what the buffer already holds, and only when that
// needs more input does the caller co_await readUntilProgress(), which reads and parses until
// progress:
//
//   error_code ec;
//   if (!parseBuffered(parser, buffer, ec))
//     co_await readUntilProgress(socket, buffer, parser, onError(ec));
//
// Ends of input: a message delimited by the close is finished (no error); otherwise
// http::error::end_of_stream when nothing of the message arrived, partial_message when some did.
// Header and body limits are the parser's (http::error::header_limit, ...). A deadline is the
// caller's: arm it around the call, and a cancelled read ends in operation_aborted.

#include <cstddef>
#include <utility>

#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>

#include "http/drain_aware_read.h"
#include "http/head_parser.h"
#include "http/socket_io.h"

namespace sticky::proxy {

/// Parses what `buffer` holds. True when the parser made progress or failed (`ec` set); false
/// when it needs more input (then co_await readUntilProgress).
template <class Parser>
inline bool parseBuffered(Parser& parser, boost::beast::flat_buffer& buffer,
                          boost::system::error_code& ec) {
  namespace http = boost::beast::http;
  ec = {};
  if (buffer.size() == 0) return false;
  if (parser.holdForFirstChunk(buffer.size())) return false;
  size_t used = parser.put(buffer.data(), ec);
  buffer.consume(used);
  parser.addConsumed(used);
  if (ec == http::error::need_more) {
    ec = {};
    return false;
  }
  if (ec == http::error::need_buffer) ec = {};  // the body buffer is full
  return true;
}

/// The input ended (the peer closed): what the buffer still holds back (holdForFirstChunk) is
/// parsed now, in one call, which cannot re-enter the parser with it; then the message ends:
/// finished if the close delimits it, else http::error::partial_message, or end_of_stream when
/// nothing of it arrived. No error in `ec` means the held bytes made progress: carry on, and
/// the next read sees the end again.
template <class Parser>
inline void parseAtEnd(Parser& parser, boost::beast::flat_buffer& buffer,
                       boost::system::error_code& ec) {
  namespace http = boost::beast::http;
  ec = {};
  if (buffer.size() != 0) {
    size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    parser.addConsumed(used);
    if (ec == http::error::need_buffer) ec = {};
    if (ec != http::error::need_more) return;  // progress, or the bytes were refused
    ec = {};
  }
  if (parser.got_some())
    parser.put_eof(ec);
  else
    ec = http::error::end_of_stream;
}

namespace detail {

/// The composed operation behind readUntilProgress (a stackless loop of async_read_some: no
/// coroutine frame of its own, and no allocation beyond the reads').
template <class Parser>
struct ReadUntilProgressOp {
  boost::asio::ip::tcp::socket& socket;
  boost::beast::flat_buffer& buffer;
  Parser& parser;
  bool reading = false;

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}, size_t n = 0) {
    if (reading) {
      if (ec) {
        if (ec == boost::asio::error::eof) parseAtEnd(parser, buffer, ec);
        self.complete(ec);
        return;
      }
      buffer.commit(n);
      if (parseBuffered(parser, buffer, ec)) {
        self.complete(ec);
        return;
      }
    }
    reading = true;
    drainAwareReadSome(socket, buffer.prepare(kReadSize), std::move(self));
  }
};

}  // namespace detail

/// Reads from `socket` into `buffer` (kReadSize at a time) and parses, until the parser makes
/// progress or fails; completes with the error_code that says which (see the top of this file).
/// An asynchronous operation: `co_await readUntilProgress(socket, buffer, parser, onError(ec))`.
template <class Parser, class CompletionToken>
auto readUntilProgress(boost::asio::ip::tcp::socket& socket, boost::beast::flat_buffer& buffer,
                       Parser& parser, CompletionToken&& token) {
  return boost::asio::async_compose<CompletionToken, void(boost::system::error_code)>(
      detail::ReadUntilProgressOp<Parser>{socket, buffer, parser}, token);
}

/// Errors Beast reports for input that is not valid HTTP (as opposed to a peer going away).
bool isParseError(boost::system::error_code ec);

}  // namespace sticky::proxy
