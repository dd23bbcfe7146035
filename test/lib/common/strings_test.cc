#include "common/strings.h"

#include <doctest/doctest.h>

namespace sticky {
namespace {

TEST_CASE("trim drops surrounding spaces, tabs and line ends only") {
  CHECK(trim("  abc\n") == "abc");
  CHECK(trim("\t\r\na b\r\n") == "a b");
  CHECK(trim("abc") == "abc");
  CHECK(trim("") == "");
  CHECK(trim(" \t\r\n ") == "");
  CHECK(trim("\vx\v") == "\vx\v");  // only the four listed characters
}

TEST_CASE("asciiLower lowers A-Z and leaves every other byte alone") {
  CHECK(asciiLower("Client-ID") == "client-id");
  CHECK(asciiLower("*.Example.COM") == "*.example.com");
  CHECK(asciiLower("") == "");
  CHECK(asciiLower("\xC3\x84@[`{") == "\xC3\x84@[`{");  // UTF-8 and A-Z's neighbours
}

TEST_CASE("asciiIEquals compares ignoring the case of A-Z") {
  CHECK(asciiIEquals("Chunked", "chunked"));
  CHECK(asciiIEquals("", ""));
  CHECK_FALSE(asciiIEquals("chunked", "chunke"));
  CHECK_FALSE(asciiIEquals("@", "`"));  // 0x40 and 0x60 differ by the case bit but are no letters
  CHECK_FALSE(asciiIEquals("[", "{"));
}

TEST_CASE("percentDecode decodes escapes and rejects broken ones") {
  CHECK(percentDecode("a%2Fb+c") == "a/b c");
  CHECK(percentDecode("%2f%2F") == "//");
  CHECK(percentDecode("a+b", PlusIsSpace::No) == "a+b");
  CHECK(percentDecode("") == "");
  CHECK(percentDecode("%00") == std::string(1, '\0'));
  CHECK(percentDecode("100%41") == "100A");
  CHECK_FALSE(percentDecode("%zz").has_value());
  CHECK_FALSE(percentDecode("%4").has_value());
  CHECK_FALSE(percentDecode("abc%").has_value());
}

}  // namespace
}  // namespace sticky
