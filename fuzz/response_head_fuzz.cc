// Fuzz target: the forwarding path's response head (proxy/src/http): HeadParser<false> as
// exchange.cc configures it (64 KiB of head, 1xx interim heads passed on and skipped, skip() for
// an answer to HEAD), and the head written for the client (appendResponseHead, framed as
// response_relay.cc's startResponse frames it for an HTTP/1.1 and an HTTP/1.0 client).
//
// Invariants:
//  - the same bytes give the same heads, or are refused, however the reads split them;
//  - MessageHead records what Beast's own fields container records for those bytes;
//  - the head written for the client is exactly one head, with the upstream's status, that
//    Beast parses to the framing the proxy relays the body with: chunked, the upstream's
//    Content-Length, until close (HTTP/1.0 client), or no body; never two framings.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "fuzz_check.h"
#include "http/headers.h"
#include "http_feed.h"

namespace {

namespace http = boost::beast::http;
using sticky::fuzz::ByteSource;
using sticky::proxy::Framing;
using sticky::proxy::MessageHead;
using sticky::proxy::ResponseHeadParser;

constexpr uint64_t kNoBodyLimit = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kUpstreamHeaderLimit = 64 * 1024;  // exchange.cc

struct Final {
  boost::system::error_code ec;
  std::vector<unsigned> statuses;  // every head read, interim ones first
  size_t consumed = 0;             // bytes before the final head's body
};

// Heads as exchange() reads them until a final one (>= 200, or 101). `head` and `parser` are
// left with the last head read.
Final readFinalHead(std::string_view input, size_t read_size, bool head_request, MessageHead& head,
                    std::optional<ResponseHeadParser>& parser) {
  boost::beast::flat_buffer buffer;
  ByteSource source(input, read_size);
  Final out;
  while (true) {
    auto& p = parser.emplace(head);
    p.header_limit(kUpstreamHeaderLimit);
    p.body_limit(kNoBodyLimit);
    if (head_request) p.skip(true);
    out.ec = sticky::fuzz::readUntilProgress(p, buffer, source);
    if (out.ec) return out;
    out.statuses.push_back(head.status());
    if (head.status() >= 200 || head.status() == 101) break;
  }
  out.consumed = input.size() - source.left() - buffer.size();
  return out;
}

// What startResponse writes for a client of `client_version`, parsed back.
void checkClientHead(const MessageHead& head, const ResponseHeadParser& parser,
                     unsigned client_version, bool head_request) {
  bool has_body = !parser.is_done();
  auto length = parser.content_length();
  sticky::proxy::ResponseHeadRewrite rewrite;
  rewrite.session_moved_name = "x-sticky-session-moved";
  rewrite.session_moved_value = "chat-1";
  bool until_close = false;
  if (has_body) {
    if (parser.chunked() || !length) {
      if (client_version >= 11)
        rewrite.framing.kind = Framing::Chunked;
      else
        until_close = true;
    } else {
      rewrite.framing = {Framing::Length, *length};
    }
  }
  rewrite.connection = until_close ? sticky::proxy::ConnectionHeader::Close
                                   : sticky::proxy::ConnectionHeader::KeepAlive;
  sticky::proxy::ByteBuffer out;
  sticky::proxy::appendResponseHead(out, head, rewrite);

  http::response_parser<http::empty_body> client;
  client.header_limit(std::numeric_limits<uint32_t>::max());
  client.body_limit(kNoBodyLimit);
  if (head_request) client.skip(true);
  boost::system::error_code ec;
  size_t used = client.put(boost::asio::buffer(out.data(), out.size()), ec);
  std::string text(out.view());
  FUZZ_CHECK(!ec && client.is_header_done(),
             "the client head does not parse (" + ec.message() + "): " + text);
  FUZZ_CHECK(used == out.size(), "the client head is followed by more: " + text);
  FUZZ_CHECK(client.get().result_int() == head.status(), "the client head has another status");
  FUZZ_CHECK(!(client.chunked() && client.get().count(http::field::content_length) > 0),
             "the client head has two framings: " + text);
  if (!has_body) {
    FUZZ_CHECK(client.is_done(), "no body is relayed, but the client head announces one: " + text);
  } else if (rewrite.framing.kind == Framing::Chunked) {
    FUZZ_CHECK(client.chunked(), "a chunked relay without chunked framing: " + text);
  } else if (rewrite.framing.kind == Framing::Length) {
    FUZZ_CHECK(client.content_length() == length, "another Content-Length: " + text);
  } else {
    FUZZ_CHECK(!client.chunked() && !client.content_length() && !client.is_done(),
               "a body until close is framed: " + text);
  }
}

void checkResponse(std::string_view input, bool head_request) {
  MessageHead head;
  std::optional<ResponseHeadParser> parser;
  Final whole = readFinalHead(input, input.size(), head_request, head, parser);

  MessageHead split_head;
  std::optional<ResponseHeadParser> split_parser;
  Final split = readFinalHead(input, 1 + input.size() % 11, head_request, split_head, split_parser);
  // Refused or not may not depend on the split; which error may (see request_head_fuzz.cc).
  FUZZ_CHECK(!split.ec == !whole.ec && split.statuses == whole.statuses,
             "split reads end otherwise: " + whole.ec.message() + " / " + split.ec.message());
  if (whole.ec) return;
  FUZZ_CHECK(sticky::fuzz::sameHead(head, split_head), "split reads give another head");
  FUZZ_CHECK(split.consumed == whole.consumed, "split reads consume another length");

  // The final head alone, as Beast's fields container records it.
  std::string_view final_text = input.substr(0, whole.consumed);
  std::optional<http::response_parser<http::empty_body>> reference;
  while (true) {
    reference.emplace();
    reference->header_limit(kUpstreamHeaderLimit);
    reference->body_limit(kNoBodyLimit);
    if (head_request) reference->skip(true);
    boost::system::error_code ec;
    size_t used = reference->put(boost::asio::buffer(final_text.data(), final_text.size()), ec);
    FUZZ_CHECK(!ec && reference->is_header_done(), "Beast refuses a head ours took");
    final_text.remove_prefix(used);
    if (final_text.empty()) break;
  }
  sticky::fuzz::checkFieldsAsBeast(head, *reference);

  checkClientHead(head, *parser, 11, head_request);
  checkClientHead(head, *parser, 10, head_request);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  checkResponse(input, false);
  checkResponse(input, true);
  return 0;
}
