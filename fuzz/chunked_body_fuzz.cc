// Fuzz target: chunked body decoding on the forwarding path. The proxy decodes chunked framing
// with Beast's basic_parser through HeadParser, which delivers body bytes into the relay piece
// (bodyBuffer), and re-frames what it relays with frameChunk (socket_io.h). The input is the
// body after a chunked request head (downstream.cc's readBodyPiece) and after a chunked
// response head (response_relay.cc's relayBody), fed in reads and pieces of several sizes.
//
// Invariants:
//  - the decoded body and the outcome (done, or which error) do not depend on how the bytes
//    were split into reads or how large the relay piece is, and equal what Beast's own string
//    body parser decodes from the whole input at once;
//  - no more body comes out than went in;
//  - the body re-framed piece by piece with frameChunk, as relayed, decodes to the same body.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "fuzz_check.h"
#include "http/connection.h"
#include "http/socket_io.h"
#include "http_feed.h"

namespace {

namespace http = boost::beast::http;
using sticky::fuzz::ByteSource;

constexpr uint64_t kNoBodyLimit = std::numeric_limits<uint64_t>::max();
constexpr std::string_view kRequestHead =
    "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
constexpr std::string_view kResponseHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

struct Relayed {
  boost::system::error_code ec;
  bool done = false;
  std::string body;      // as decoded
  std::string reframed;  // the head and the body pieces framed with frameChunk
};

// The head, then the body piece by piece as the relay loop reads it: a piece of `piece_size`
// bytes at most, the reads `read_size` bytes each.
template <bool isRequest>
Relayed relay(std::string_view head_text, std::string_view body, size_t read_size,
              size_t piece_size) {
  std::string input(head_text);
  input += body;
  sticky::proxy::MessageHead head;
  sticky::proxy::HeadParser<isRequest> parser(head);
  parser.header_limit(64 * 1024);
  parser.body_limit(kNoBodyLimit);
  boost::beast::flat_buffer buffer;
  ByteSource source(input, read_size);
  Relayed out;
  out.ec = sticky::fuzz::readUntilProgress(parser, buffer, source);
  FUZZ_CHECK(!out.ec && parser.is_header_done() && parser.chunked(), "the fixed head failed");
  out.reframed = head_text;
  auto piece = std::make_unique<char[]>(piece_size);
  while (!parser.is_done()) {
    parser.bodyBuffer(piece.get(), piece_size);
    out.ec = sticky::fuzz::readUntilProgress(parser, buffer, source);
    size_t got = piece_size - parser.bodySpace();
    FUZZ_CHECK(got <= piece_size, "more than the piece was written");
    out.body.append(piece.get(), got);
    if (out.ec) return out;
    sticky::proxy::ByteBuffer prefix;
    std::string_view suffix = sticky::proxy::frameChunk(prefix, got, parser.is_done());
    out.reframed += prefix.view();
    out.reframed.append(piece.get(), got);
    out.reframed += suffix;
  }
  out.done = true;
  return out;
}

template <bool isRequest>
void checkBody(std::string_view head_text, std::string_view body) {
  std::string input(head_text);
  input += body;
  http::parser<isRequest, http::string_body> reference;
  reference.eager(true);
  reference.header_limit(64 * 1024);
  reference.body_limit(kNoBodyLimit);
  boost::system::error_code ref_ec;
  std::string_view rest = input;
  while (true) {  // the whole input, then its end (the peer's close) if the body is not done
    size_t used = reference.put(boost::asio::buffer(rest.data(), rest.size()), ref_ec);
    rest.remove_prefix(used);
    if (ref_ec == http::error::need_more || (!ref_ec && used == 0 && !reference.is_done())) {
      reference.put_eof(ref_ec);
      break;
    }
    if (ref_ec || reference.is_done()) break;
  }

  Relayed big = relay<isRequest>(head_text, body, input.size(), sticky::proxy::kRelayPieceSize);
  FUZZ_CHECK(big.body.size() <= body.size(), "more body came out than went in");
  FUZZ_CHECK(big.done == reference.is_done() && big.ec == ref_ec,
             "the relay ends otherwise than Beast: " + big.ec.message() + " / " + ref_ec.message());
  if (big.done) FUZZ_CHECK(big.body == reference.get().body(), "the body differs from Beast's");

  Relayed small = relay<isRequest>(head_text, body, 1 + body.size() % 7, 1 + body.size() % 5);
  FUZZ_CHECK(small.done == big.done && small.ec == big.ec,
             "small reads and pieces end otherwise: " + small.ec.message());
  FUZZ_CHECK(small.body == big.body, "small reads and pieces decode another body");
  if (!big.done) return;

  for (const Relayed* r : {&big, &small}) {
    http::parser<isRequest, http::string_body> again;
    again.eager(true);
    again.body_limit(kNoBodyLimit);
    boost::system::error_code ec;
    size_t used = again.put(boost::asio::buffer(r->reframed.data(), r->reframed.size()), ec);
    FUZZ_CHECK(!ec && again.is_done() && used == r->reframed.size(),
               "the re-framed body does not parse whole: " + ec.message());
    FUZZ_CHECK(again.get().body() == big.body, "the re-framed body decodes to another body");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  checkBody<true>(kRequestHead, body);
  checkBody<false>(kResponseHead, body);
  return 0;
}
