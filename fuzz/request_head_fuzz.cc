// Fuzz target: the forwarding path's request head (proxy/src/http): HeadParser<true> recording
// into a MessageHead, configured as client_connection.cc configures it, the request checks
// (checkRequestHead), routing's host and path extraction, and the head written for the upstream
// (appendRequestHead, framed as exchange.cc frames it).
//
// Invariants:
//  - the same bytes give the same head, or are refused, however the reads split them;
//  - MessageHead records what Beast's own fields container records for those bytes;
//  - a refusal is a 4xx or 501 with a sentence;
//  - a head the checks accept, written for the upstream, is exactly one head (nothing after
//    it) that Beast parses to the same method and target, framed exactly as the proxy frames
//    the body it relays: chunked, or the received Content-Length, or no body; never both;
//  - host and path are views into the request (or "/").

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "config/model.h"
#include "fuzz_check.h"
#include "http/headers.h"
#include "http_feed.h"

namespace {

namespace http = boost::beast::http;
using sticky::fuzz::ByteSource;
using sticky::proxy::MessageHead;
using sticky::proxy::RequestHeadParser;

constexpr uint64_t kNoBodyLimit = std::numeric_limits<uint64_t>::max();
const uint32_t kHeaderLimit = sticky::Limits{}.max_header_bytes;

struct Parsed {
  boost::system::error_code ec;
  bool header_done = false;
};

// One request head read as Connection::serve reads it, in reads of `read_size` bytes.
Parsed readHead(std::string_view input, size_t read_size, MessageHead& head,
                std::optional<RequestHeadParser>& parser) {
  auto& p = parser.emplace(head);
  p.header_limit(kHeaderLimit);
  p.body_limit(kNoBodyLimit);
  boost::beast::flat_buffer buffer;
  ByteSource source(input, read_size);
  Parsed out;
  out.ec = sticky::fuzz::readUntilProgress(p, buffer, source);
  out.header_done = p.is_header_done();
  return out;
}

bool within(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void checkUpstreamHead(const MessageHead& head, const RequestHeadParser& parser) {
  sticky::proxy::RequestHeadRewrite rewrite;
  if (parser.chunked()) {
    rewrite.framing.kind = sticky::proxy::Framing::Chunked;
  } else if (auto length = parser.content_length()) {
    rewrite.framing = {sticky::proxy::Framing::Length, *length};
  }
  rewrite.keep_upgrade =
      parser.upgrade() && parser.is_done() && head.count(http::field::upgrade) > 0;
  rewrite.moved_from_name = "x-sticky-moved-from";
  rewrite.moved_from_value = "chat-0";
  rewrite.client_ip = "192.0.2.1";
  rewrite.proto = "http";
  rewrite.host = head[http::field::host];
  sticky::proxy::ByteBuffer out;
  sticky::proxy::appendRequestHead(out, head, rewrite);

  http::request_parser<http::empty_body> upstream;
  upstream.header_limit(std::numeric_limits<uint32_t>::max());
  upstream.body_limit(kNoBodyLimit);
  boost::system::error_code ec;
  size_t used = upstream.put(boost::asio::buffer(out.data(), out.size()), ec);
  std::string text(out.view());
  FUZZ_CHECK(!ec && upstream.is_header_done(),
             "the upstream head does not parse (" + ec.message() + "): " + text);
  FUZZ_CHECK(used == out.size(), "the upstream head is followed by more: " + text);
  const auto& req = upstream.get();
  FUZZ_CHECK(std::string_view(req.method_string()) == head.methodString() &&
                 std::string_view(req.target()) == head.target(),
             "the upstream head has another request line: " + text);
  FUZZ_CHECK(upstream.chunked() == parser.chunked(), "the upstream head is framed otherwise");
  FUZZ_CHECK(upstream.content_length() == parser.content_length(),
             "the upstream head has another Content-Length: " + text);
  FUZZ_CHECK(!(upstream.chunked() && req.count(http::field::content_length) > 0),
             "the upstream head has two framings: " + text);
  FUZZ_CHECK(req.count("x-forwarded-for") == 1, "X-Forwarded-For is not one field: " + text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  MessageHead head;
  std::optional<RequestHeadParser> parser;
  Parsed whole = readHead(input, input.size(), head, parser);

  MessageHead split_head;
  std::optional<RequestHeadParser> split_parser;
  Parsed split = readHead(input, 1 + size % 13, split_head, split_parser);
  // Whether the head is refused may not depend on the split; which error may: Beast reports a
  // bare-LF head as "bad version" once all of it is there, but a split one waits for a CRLF CRLF
  // that never comes (docs/fuzzing.md, "Known behaviour").
  FUZZ_CHECK(!split.ec == !whole.ec && split.header_done == whole.header_done,
             "split reads end otherwise: " + whole.ec.message() + " / " + split.ec.message());
  if (whole.header_done)
    FUZZ_CHECK(sticky::fuzz::sameHead(head, split_head), "split reads give another head");

  http::request_parser<http::empty_body> reference;
  reference.header_limit(kHeaderLimit);
  reference.body_limit(kNoBodyLimit);
  boost::system::error_code ref_ec;
  reference.put(boost::asio::buffer(input.data(), input.size()), ref_ec);
  if (ref_ec == http::error::need_more && reference.got_some()) reference.put_eof(ref_ec);
  FUZZ_CHECK(reference.is_header_done() == whole.header_done, "Beast disagrees on the head");
  if (!whole.header_done) return 0;
  sticky::fuzz::checkFieldsAsBeast(head, reference);
  FUZZ_CHECK(std::string_view(reference.get().method_string()) == head.methodString() &&
                 std::string_view(reference.get().target()) == head.target(),
             "the request line differs from Beast's");

  auto checked = sticky::proxy::checkRequestHead(head);
  if (!checked) {
    unsigned status = static_cast<unsigned>(checked.error().status());
    FUZZ_CHECK((status >= 400 && status < 500) || status == 501, "a refusal that is not 4xx");
    FUZZ_CHECK(!checked.error().sentence.empty(), "a refusal without a sentence");
    return 0;
  }
  std::string_view target = head.target();
  std::string_view authority = sticky::proxy::targetAuthority(target);
  std::string_view host_field = head[http::field::host];
  std::string_view host =
      sticky::proxy::hostWithoutPort(authority.empty() ? host_field : authority);
  FUZZ_CHECK(within(authority, target), "the authority is not part of the target");
  FUZZ_CHECK(within(host, authority.empty() ? host_field : authority),
             "the host is not part of the Host field or authority");
  std::string_view path = sticky::proxy::targetPath(target);
  FUZZ_CHECK(path == "/" || within(path, target), "the path is not part of the target");
  checkUpstreamHead(head, *parser);
  return 0;
}
