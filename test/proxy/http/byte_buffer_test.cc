#include "http/byte_buffer.h"

#include <doctest/doctest.h>

#include <string>

namespace sticky::proxy {
namespace {

TEST_CASE("ByteBuffer appends, grows keeping its bytes, and keeps its capacity when cleared") {
  ByteBuffer b;
  CHECK(b.empty());
  CHECK(b.view().empty());
  b.append("");
  CHECK(b.empty());
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    std::string piece = "piece-" + std::to_string(i) + ";";
    b.append(piece);
    expected += piece;
  }
  b.push_back('!');
  expected += '!';
  CHECK(b.view() == expected);
  CHECK(b.size() == expected.size());
  size_t capacity = b.capacity();
  CHECK(capacity >= expected.size());
  b.clear();
  CHECK(b.empty());
  CHECK(b.capacity() == capacity);
  b.append("again");
  CHECK(b.view() == "again");
  b.reserve(capacity * 4);
  CHECK(b.capacity() >= capacity * 4);
  CHECK(b.view() == "again");

  b.clearAndShrink(b.capacity());  // not more than allowed: kept
  CHECK(b.empty());
  CHECK(b.capacity() >= capacity * 4);
  b.append("x");
  b.clearAndShrink(16);  // more than allowed: given back
  CHECK(b.empty());
  CHECK(b.capacity() == 0);
  b.append("after");
  CHECK(b.view() == "after");
}

}  // namespace
}  // namespace sticky::proxy
