// Fuzz target: the RESP codec's parser (proxy/src/redis/resp.h), with the default limits and
// with small ones so the limit paths are reached with small inputs.
//
// Invariants (the contract the Redis connection relies on):
//  - Done consumes at least one byte and never more than it was given, and parsing exactly the
//    consumed bytes gives the same value;
//  - the parser is stateless and incremental: every strict prefix of a whole value is
//    Incomplete (never Invalid: the bytes so far may still become that value), and a prefix of
//    an Incomplete input is Incomplete too;
//  - Invalid is final: more bytes never turn it into a value;
//  - a parsed value written back as RESP parses to the same value, consuming all of it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "redis/resp.h"

namespace {

using sticky::proxy::redis::parseResp;
using sticky::proxy::redis::RespLimits;
using sticky::proxy::redis::RespParse;
using sticky::proxy::redis::RespType;
using sticky::proxy::redis::RespValue;
using Status = RespParse::Status;

bool sameValue(const RespValue& a, const RespValue& b) {
  if (a.type != b.type || a.text != b.text || a.integer != b.integer ||
      a.elements.size() != b.elements.size()) {
    return false;
  }
  for (size_t i = 0; i < a.elements.size(); ++i)
    if (!sameValue(a.elements[i], b.elements[i])) return false;
  return true;
}

void appendLength(std::string& out, char kind, size_t n) {
  out += kind;
  out += std::to_string(n);
  out += "\r\n";
}

// The value as RESP (RESP3 forms where RESP2 has none).
void encode(const RespValue& v, std::string& out) {
  switch (v.type) {
    case RespType::SimpleString:
    case RespType::Double:
    case RespType::BigNumber:
      out += v.type == RespType::SimpleString ? '+' : (v.type == RespType::Double ? ',' : '(');
      out += v.text;
      out += "\r\n";
      return;
    case RespType::Error:
    case RespType::BulkString:
      appendLength(out, v.type == RespType::Error ? '!' : '$', v.text.size());
      out += v.text;
      out += "\r\n";
      return;
    case RespType::Verbatim:
      appendLength(out, '=', v.text.size() + 4);
      out += "txt:";
      out += v.text;
      out += "\r\n";
      return;
    case RespType::Integer:
      out += ':';
      out += std::to_string(v.integer);
      out += "\r\n";
      return;
    case RespType::Null:
      out += "_\r\n";
      return;
    case RespType::Boolean:
      out += v.integer ? "#t\r\n" : "#f\r\n";
      return;
    case RespType::Array:
    case RespType::Set:
    case RespType::Push:
    case RespType::Map: {
      char kind = v.type == RespType::Array  ? '*'
                  : v.type == RespType::Set  ? '~'
                  : v.type == RespType::Push ? '>'
                                             : '%';
      appendLength(out, kind, v.type == RespType::Map ? v.elements.size() / 2 : v.elements.size());
      for (const auto& e : v.elements) encode(e, out);
      return;
    }
  }
}

void checkWith(std::string_view in, const RespLimits& limits) {
  RespParse r = parseResp(in, limits);
  switch (r.status) {
    case Status::Done: {
      FUZZ_CHECK(r.consumed > 0 && r.consumed <= in.size(), "Done consumed out of range");
      std::string_view whole = in.substr(0, r.consumed);
      RespParse again = parseResp(whole, limits);
      FUZZ_CHECK(again.status == Status::Done && again.consumed == r.consumed,
                 "the consumed bytes alone do not parse the same");
      FUZZ_CHECK(sameValue(again.value, r.value), "the consumed bytes alone give another value");
      for (size_t n : {size_t{0}, whole.size() / 2, whole.size() - 1}) {
        RespParse prefix = parseResp(whole.substr(0, n), limits);
        FUZZ_CHECK(prefix.status == Status::Incomplete,
                   "a strict prefix of a whole value is not Incomplete: " + prefix.error);
      }
      std::string encoded;
      encode(r.value, encoded);
      RespParse reparsed = parseResp(encoded, limits);
      FUZZ_CHECK(reparsed.status == Status::Done && reparsed.consumed == encoded.size(),
                 "a value written back does not parse whole: " + reparsed.error);
      FUZZ_CHECK(sameValue(reparsed.value, r.value), "a value written back parses differently");
      sticky::proxy::redis::describe(r.value);  // for logs: any value, no crash
      break;
    }
    case Status::Incomplete:
      FUZZ_CHECK(r.consumed == 0, "Incomplete consumed bytes");
      if (!in.empty()) {
        RespParse prefix = parseResp(in.substr(0, in.size() - 1), limits);
        FUZZ_CHECK(prefix.status == Status::Incomplete,
                   "a prefix of an Incomplete input is not Incomplete: " + prefix.error);
      }
      break;
    case Status::Invalid: {
      FUZZ_CHECK(!r.error.empty(), "Invalid without a message");
      std::string more(in);
      more += "\r\n";
      RespParse longer = parseResp(more, limits);
      FUZZ_CHECK(longer.status == Status::Invalid, "more bytes turned an Invalid input valid");
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  checkWith(in, RespLimits{});
  checkWith(
      in,
      RespLimits{.max_bulk_bytes = 64, .max_elements = 16, .max_depth = 4, .max_line_bytes = 32});
  return 0;
}
