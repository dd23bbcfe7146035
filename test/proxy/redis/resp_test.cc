// The RESP codec without a server: every type, every split point, the limits, malformed input.
#include "redis/resp.h"

#include <doctest/doctest.h>

namespace sticky::proxy::redis {
namespace {

using Status = RespParse::Status;

RespValue done(std::string_view input) {
  RespParse p = parseResp(input);
  INFO("input: " << std::string(input) << " error: " << p.error);
  REQUIRE(p.status == Status::Done);
  CHECK(p.consumed == input.size());
  return p.value;
}

std::string invalid(std::string_view input, const RespLimits& limits = {}) {
  RespParse p = parseResp(input, limits);
  INFO("input: " << std::string(input));
  REQUIRE(p.status == Status::Invalid);
  CHECK(!p.error.empty());
  return p.error;
}

// Every proper prefix of a whole value is Incomplete; the whole is Done.
void everyPrefixIncomplete(std::string_view whole) {
  for (size_t n = 0; n < whole.size(); ++n) {
    RespParse p = parseResp(whole.substr(0, n));
    INFO("prefix of " << n << " bytes of " << std::string(whole) << ": " << p.error);
    CHECK(p.status == Status::Incomplete);
  }
  CHECK(parseResp(whole).status == Status::Done);
}

}  // namespace

TEST_CASE("resp: RESP2 replies") {
  RespValue ok = done("+OK\r\n");
  CHECK(ok.type == RespType::SimpleString);
  CHECK(ok.text == "OK");

  RespValue err = done("-WRONGTYPE Operation against a key\r\n");
  CHECK(err.isError());
  CHECK(err.text == "WRONGTYPE Operation against a key");

  CHECK(done(":42\r\n").integer == 42);
  CHECK(done(":-7\r\n").integer == -7);
  CHECK(done(":9223372036854775807\r\n").integer == INT64_MAX);

  RespValue bulk = done("$5\r\nhello\r\n");
  CHECK(bulk.type == RespType::BulkString);
  CHECK(bulk.text == "hello");
  CHECK(done("$0\r\n\r\n").text.empty());
  CHECK(done("$-1\r\n").isNull());
  CHECK(done("*-1\r\n").isNull());

  RespValue arr = done("*3\r\n:1\r\n$1\r\nx\r\n*0\r\n");
  REQUIRE(arr.type == RespType::Array);
  REQUIRE(arr.elements.size() == 3);
  CHECK(arr.elements[0].integer == 1);
  CHECK(arr.elements[1].text == "x");
  CHECK(arr.elements[2].type == RespType::Array);
  CHECK(arr.elements[2].elements.empty());
}

TEST_CASE("resp: bulk strings are binary-safe") {
  std::string body("a\r\nb\0c", 6);
  std::string wire = "$6\r\n" + body + "\r\n";
  RespValue v = done(wire);
  CHECK(v.text == body);
}

TEST_CASE("resp: RESP3 types") {
  CHECK(done("_\r\n").isNull());
  CHECK(done("#t\r\n").integer == 1);
  CHECK(done("#f\r\n").integer == 0);
  CHECK(done(",3.14\r\n").text == "3.14");
  CHECK(done("(3492890328409238509324850943850943825024385\r\n").type == RespType::BigNumber);
  RespValue verbatim = done("=15\r\ntxt:Some string\r\n");
  CHECK(verbatim.type == RespType::Verbatim);
  CHECK(verbatim.text == "Some string");
  RespValue blob_error = done("!21\r\nSYNTAX invalid syntax\r\n");
  CHECK(blob_error.isError());
  CHECK(blob_error.text == "SYNTAX invalid syntax");

  RespValue map = done("%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n");
  REQUIRE(map.type == RespType::Map);
  REQUIRE(map.elements.size() == 4);
  CHECK(map.elements[2].text == "b");
  CHECK(map.elements[3].integer == 2);
  CHECK(done("~2\r\n+a\r\n+b\r\n").type == RespType::Set);

  RespValue push = done(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nhi!\r\n");
  CHECK(push.type == RespType::Push);
  CHECK(push.isList());
  CHECK(push.elements[2].text == "hi!");
}

TEST_CASE("resp: every prefix of a value is Incomplete, never Invalid") {
  for (std::string_view whole : {"+OK\r\n", "-ERR x\r\n", ":123\r\n", "$5\r\nhello\r\n", "$-1\r\n",
                                 "*-1\r\n", "*2\r\n$3\r\nfoo\r\n:7\r\n", "%1\r\n+k\r\n*1\r\n_\r\n",
                                 "=8\r\ntxt:abcd\r\n", "#t\r\n", ">2\r\n+a\r\n+b\r\n"}) {
    everyPrefixIncomplete(whole);
  }
}

TEST_CASE("resp: values in a row are parsed one at a time") {
  std::string wire = "+OK\r\n:1\r\n$-1\r\n";
  std::string_view rest = wire;
  std::vector<std::string> seen;
  while (!rest.empty()) {
    RespParse p = parseResp(rest);
    REQUIRE(p.status == Status::Done);
    seen.push_back(describe(p.value));
    rest.remove_prefix(p.consumed);
  }
  CHECK(seen == std::vector<std::string>{"OK", "1", "(nil)"});
}

TEST_CASE("resp: malformed input is Invalid with a reason") {
  CHECK(invalid("?x\r\n").find("unknown RESP type byte '?'") != std::string::npos);
  CHECK(invalid("+OK\n").find("LF without CR") != std::string::npos);
  CHECK(invalid("+OK\rX").find("CR not followed by LF") != std::string::npos);
  CHECK(invalid(":12a\r\n").find("not a 64-bit integer") != std::string::npos);
  CHECK(invalid(":\r\n").find("not a 64-bit integer") != std::string::npos);
  CHECK(invalid(":99999999999999999999\r\n").find("not a 64-bit integer") != std::string::npos);
  CHECK(invalid("$-2\r\n").find("negative") != std::string::npos);
  CHECK(invalid("$3\r\nabcd\r\n").find("not followed by CRLF") != std::string::npos);
  CHECK(invalid("*-2\r\n").find("-2 elements") != std::string::npos);
  CHECK(invalid("=3\r\nabc\r\n").find("3-letter format") != std::string::npos);
  CHECK(invalid("#x\r\n").find("not 't' or 'f'") != std::string::npos);
  CHECK(invalid("_x\r\n").find("text after '_'") != std::string::npos);
  CHECK(invalid(",\r\n").find("empty") != std::string::npos);
  CHECK(invalid("|1\r\n+a\r\n+b\r\n+c\r\n").find("attributes") != std::string::npos);
  // An error deep inside an aggregate is still reported.
  CHECK(invalid("*2\r\n:1\r\n:x\r\n").find("not a 64-bit integer") != std::string::npos);
}

TEST_CASE("resp: limits refuse what a header claims instead of allocating it") {
  RespLimits limits;
  limits.max_bulk_bytes = 16;
  limits.max_elements = 8;
  limits.max_depth = 3;
  limits.max_line_bytes = 10;
  CHECK(invalid("$17\r\n", limits).find("over the 16-byte limit") != std::string::npos);
  CHECK(parseResp("$16\r\n", limits).status == Status::Incomplete);
  CHECK(invalid("*9\r\n", limits).find("over the 8-element limit") != std::string::npos);
  CHECK(invalid("%5\r\n", limits).find("over the 8-element limit") != std::string::npos);
  CHECK(invalid("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", limits).find("deeper than 3") !=
        std::string::npos);
  CHECK(parseResp("*1\r\n*1\r\n*1\r\n:1\r\n", limits).status == Status::Done);
  CHECK(invalid("+0123456789ab", limits).find("longer than 10 bytes") != std::string::npos);
  // Default limits: a hostile element count is refused before anything is reserved for it.
  CHECK(invalid("*2000000000\r\n").find("element limit") != std::string::npos);
  // A large but allowed count is parsed lazily: Incomplete without reserving for it.
  CHECK(parseResp("*1000000\r\n:1\r\n").status == Status::Incomplete);
}

TEST_CASE("resp: a line over the limit is Invalid whether or not its CRLF has arrived") {
  // Found by fuzz/resp_fuzz.cc: the limit was checked only while the CRLF was missing, so the
  // same reply was Invalid or Done depending on how the socket split it.
  RespLimits limits;
  limits.max_line_bytes = 10;
  for (std::string_view line : {"+0123456789a", "-0123456789a", ":12345678901", "$12345678901"}) {
    INFO(line);
    std::string whole = std::string(line) + "\r\n";
    CHECK(invalid(line, limits).find("longer than 10 bytes") != std::string::npos);
    CHECK(invalid(whole, limits).find("longer than 10 bytes") != std::string::npos);
  }
  // Exactly at the limit: Incomplete, then Done.
  CHECK(parseResp("+0123456789", limits).status == Status::Incomplete);
  CHECK(parseResp("+0123456789\r", limits).status == Status::Incomplete);
  CHECK(parseResp("+0123456789\r\n", limits).status == Status::Done);
}

TEST_CASE("resp: encodeCommand writes an array of bulk strings that parses back") {
  std::string out;
  encodeCommand(out, {"SET", "k", "v"});
  CHECK(out == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");

  std::string binary("a\r\n\0b", 5);
  std::string more;
  encodeCommand(more, std::vector<std::string>{"SET", "sticky:shop/chat:" + binary, "", "PX"});
  RespValue back = done(more);
  REQUIRE(back.type == RespType::Array);
  REQUIRE(back.elements.size() == 4);
  CHECK(back.elements[1].text == "sticky:shop/chat:" + binary);
  CHECK(back.elements[2].text.empty());

  std::string empty;
  encodeCommand(empty, std::vector<std::string>{});
  CHECK(empty == "*0\r\n");
}

TEST_CASE("resp: describe for logs") {
  CHECK(describe(done("$-1\r\n")) == "(nil)");
  CHECK(describe(done("-ERR no\r\n")) == "(error) ERR no");
  CHECK(describe(done("*2\r\n:1\r\n$1\r\na\r\n")) == "[1, \"a\"]");
  CHECK(describe(done("%1\r\n+k\r\n#t\r\n")) == "{k: true}");
  CHECK(describe(done("$3\r\na\nb\r\n")) == "\"a\\x0ab\"");
}

}  // namespace sticky::proxy::redis
