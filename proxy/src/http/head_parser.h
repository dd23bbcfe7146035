#pragma once
// The forwarding path's HTTP/1.x parser: Beast's basic_parser does the parsing and validation;
// instead of building a basic_fields container (one allocation and a tree insertion per field,
// a copy of every name and value), the head is recorded in a MessageHead that each connection
// reuses from message to message: the text of the start line and fields in one buffer, and a
// list of views into it. Body bytes go straight into the caller's relay buffer, as with
// beast::http::buffer_body.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include "http/byte_buffer.h"

namespace sticky::proxy {

/// One header field of a MessageHead: views into the head's own storage.
struct HeadField {
  boost::beast::http::field id = boost::beast::http::field::unknown;  // unknown: not a name
                                                                      // Beast knows
  std::string_view name;                                              // as received
  std::string_view value;  // without surrounding whitespace
};

/// A parsed request or response head. Views returned by it stay valid until clear().
class MessageHead {
 public:
  MessageHead() = default;
  MessageHead(const MessageHead&) = delete;
  MessageHead& operator=(const MessageHead&) = delete;

  boost::beast::http::verb method() const { return method_; }
  std::string_view methodString() const { return method_string_; }
  std::string_view target() const { return target_; }
  unsigned status() const { return status_; }
  std::string_view reason() const { return reason_; }
  unsigned version() const { return version_; }  // 10 or 11
  const std::vector<HeadField>& fields() const { return fields_; }

  /// The value of the first field `id`; empty when there is none.
  std::string_view operator[](boost::beast::http::field id) const;
  /// The first field named `name` (case-insensitive), or nullptr.
  const HeadField* find(std::string_view name) const;
  /// How many fields `id` the head has.
  size_t count(boost::beast::http::field id) const;

  /// Frees what an unusually large head left behind (for an idle connection; the head is
  /// forgotten then). Usually there is nothing to free.
  void release() {
    if (text_.capacity() > kKeptTextBytes || fields_.capacity() > kKeptFields) releaseNow();
  }

  // Building a head (HeadParser does this; tests may too): clear(), the start line, the fields.
  void clear();
  void setRequestLine(boost::beast::http::verb method, std::string_view method_string,
                      std::string_view target, unsigned version);
  void setStatusLine(unsigned status, std::string_view reason, unsigned version);
  void addField(boost::beast::http::field id, std::string_view name, std::string_view value);

 private:
  static constexpr size_t kKeptTextBytes = 8 * 1024;
  static constexpr size_t kKeptFields = 128;

  void releaseNow();
  /// Room for `n` more bytes in text_ without reallocating: grows it (and moves every view
  /// into it) when there is not.
  void makeRoom(size_t n);
  void grow(size_t more);
  /// A copy of `s` at the end of text_, which must have room for it.
  std::string_view keep(std::string_view s);

  ByteBuffer text_;  // start-line parts and every name and value, back to back
  std::vector<HeadField> fields_;
  boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
  std::string_view method_string_, target_, reason_;
  unsigned status_ = 0;
  unsigned version_ = 11;
};

/// Beast's parser recording into a MessageHead. Use one per message (as Beast's parsers); the
/// head it fills is cleared when it is constructed.
template <bool isRequest>
class HeadParser final : public boost::beast::http::basic_parser<isRequest> {
 public:
  using error_code = boost::system::error_code;

  explicit HeadParser(MessageHead& head) : head_(head) { head_.clear(); }

  /// Beast's put(), with Beast's body limit set to what is left of 2^64 - 1 bytes (the proxy
  /// streams bodies: no smaller limit is Beast's to keep). The limit is set before every call
  /// from what the chunk headers Beast accepted add up to, because Beast 1.74 subtracts a chunk's
  /// size from it before it parses the chunk's extensions, and again each time it re-parses a
  /// chunk line whose quoted extension ran to the end of the bytes at hand (need_more): such a
  /// line split there ended as body_limit where the same bytes at once end as partial_message
  /// or bad_chunk_extension (found by the chunked_body fuzz target). (Not boost::none: Beast
  /// 1.74 compares a Content-Length against an empty optional and reports body_limit.)
  template <class ConstBufferSequence>
  std::size_t put(const ConstBufferSequence& buffers, error_code& ec) {
    this->body_limit(body_budget_);
    return boost::beast::http::basic_parser<isRequest>::put(buffers, ec);
  }

  const MessageHead& head() const { return head_; }

  /// Where the next body bytes go: put() stops with error::need_buffer once `size` bytes have
  /// arrived (or at once when `data` is null). bodySpace() then says what is left of it.
  void bodyBuffer(char* data, size_t size) {
    body_data_ = data;
    body_space_ = size;
  }
  size_t bodySpace() const { return body_space_; }
  /// Bytes of the message put() has taken so far: head, body and framing (parseBuffered adds
  /// them; the access log reports them).
  uint64_t consumed() const { return consumed_; }
  void addConsumed(size_t n) { consumed_ += n; }

  /// True while put() must not yet see the `buffered` bytes: a chunked body's first chunk line
  /// is parsed only once 5 bytes (the smallest whole chunked body, "0\r\n\r\n") are buffered.
  /// Beast 1.74 asserts 5 (basic_parser.ipp:688) when it re-enters a last chunk that came first
  /// and in pieces; builds with assertions on (asan, tsan, fuzz) would abort on such a client.
  /// Every chunked body has those 5 bytes, so waiting for them never waits for input that a
  /// well-formed message does not bring.
  bool holdForFirstChunk(size_t buffered) const {
    return buffered < 5 && !chunk_seen_ && this->is_header_done() && this->chunked() &&
           !this->is_done();
  }

 private:
  using string_view = boost::beast::string_view;

  void on_request_impl(boost::beast::http::verb method, string_view method_string,
                       string_view target, int version, error_code& ec) override;
  void on_response_impl(int status, string_view reason, int version, error_code& ec) override;
  void on_field_impl(boost::beast::http::field id, string_view name, string_view value,
                     error_code& ec) override;
  void on_header_impl(error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         error_code& ec) override;
  std::size_t on_body_impl(string_view body, error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t size, string_view extensions, error_code& ec) override;
  std::size_t on_chunk_body_impl(std::uint64_t remain, string_view body, error_code& ec) override;
  void on_finish_impl(error_code& ec) override;

  MessageHead& head_;
  char* body_data_ = nullptr;
  size_t body_space_ = 0;
  bool chunk_seen_ = false;  // a chunk header (or the last chunk) has been parsed
  std::uint64_t body_budget_ = std::numeric_limits<std::uint64_t>::max();  // see put()
  uint64_t consumed_ = 0;
};

using RequestHeadParser = HeadParser<true>;
using ResponseHeadParser = HeadParser<false>;

extern template class HeadParser<true>;
extern template class HeadParser<false>;

/// ASCII case-insensitive equality (header names and tokens).
bool iequals(std::string_view a, std::string_view b);

}  // namespace sticky::proxy
