#pragma once
// Feeding the forwarding path's parsers in fuzz targets as a socket would: the bytes arrive in
// reads of a given size and are parsed by the proxy's own parseBuffered() (read_progress.h), so
// the loop below is readUntilProgress without the socket. Also the comparison of two parsed
// heads, and a reference parse by Beast's own fields container.

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "fuzz_check.h"
#include "http/head_parser.h"
#include "http/read_progress.h"

namespace sticky::fuzz {

/// The peer's bytes, handed out `read_size` at a time; the end of the input is its close.
class ByteSource {
 public:
  ByteSource(std::string_view input, size_t read_size)
      : input_(input), read_size_(std::max<size_t>(read_size, 1)) {}

  /// Appends the next read to `buffer`; false at the end of the input.
  bool read(boost::beast::flat_buffer& buffer) {
    if (input_.empty()) return false;
    size_t n = std::min(read_size_, input_.size());
    auto space = buffer.prepare(n);
    std::copy_n(input_.data(), n, static_cast<char*>(space.data()));
    buffer.commit(n);
    input_.remove_prefix(n);
    return true;
  }
  size_t left() const { return input_.size(); }

 private:
  std::string_view input_;
  size_t read_size_;
};

/// readUntilProgress (read_progress.h) over a ByteSource: parses what `buffer` holds, reading
/// more while the parser needs it; the error it completes with (none on progress).
template <class Parser>
boost::system::error_code readUntilProgress(Parser& parser, boost::beast::flat_buffer& buffer,
                                            ByteSource& source) {
  boost::system::error_code ec;
  if (proxy::parseBuffered(parser, buffer, ec)) return ec;
  while (true) {
    if (!source.read(buffer)) {
      proxy::parseAtEnd(parser, buffer, ec);
      return ec;
    }
    if (proxy::parseBuffered(parser, buffer, ec)) return ec;
  }
}

/// Whether two recorded heads are the same message head.
inline bool sameHead(const proxy::MessageHead& a, const proxy::MessageHead& b) {
  if (a.methodString() != b.methodString() || a.target() != b.target() ||
      a.status() != b.status() || a.reason() != b.reason() || a.version() != b.version() ||
      a.fields().size() != b.fields().size()) {
    return false;
  }
  for (size_t i = 0; i < a.fields().size(); ++i) {
    const auto& fa = a.fields()[i];
    const auto& fb = b.fields()[i];
    if (fa.id != fb.id || fa.name != fb.name || fa.value != fb.value) return false;
  }
  return true;
}

/// Checks that `head` recorded exactly the fields Beast's own parser (basic_fields) recorded
/// for the same bytes. basic_fields keeps fields of one name together (a repeated name is
/// inserted after the last field of that name), so both lists are compared grouped by name,
/// in received order within each name.
template <bool isRequest>
void checkFieldsAsBeast(
    const proxy::MessageHead& head,
    const boost::beast::http::parser<isRequest, boost::beast::http::empty_body>& reference) {
  using Field = std::pair<std::string, std::string>;
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    return out;
  };
  auto byName = [&](const Field& a, const Field& b) { return lower(a.first) < lower(b.first); };
  std::vector<Field> mine, beast;
  for (const auto& f : head.fields()) mine.emplace_back(f.name, f.value);
  for (const auto& f : reference.get())
    beast.emplace_back(std::string(f.name_string()), std::string(f.value()));
  std::stable_sort(mine.begin(), mine.end(), byName);
  std::stable_sort(beast.begin(), beast.end(), byName);
  FUZZ_CHECK(mine == beast, "the fields differ from Beast's");
  FUZZ_CHECK(head.version() == reference.get().version(), "the version differs from Beast's");
}

}  // namespace sticky::fuzz
