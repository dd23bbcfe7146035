#pragma once
// RESP, the Redis serialization protocol (RESP2 and the RESP3 types), without I/O: a parser from
// bytes to values and an encoder from a command to bytes. The shared stick table's connection
// feeds it whatever the socket gave and writes what it encodes; nothing here blocks or throws.
//
//   parseResp("+OK\r\n")                 -> Done, consumed 5, SimpleString "OK"
//   parseResp("$5\r\nhel")               -> Incomplete (call again with more bytes)
//   parseResp("$-1\r\n")                 -> Done, Null            (RESP2 nil bulk string)
//   parseResp("*2\r\n:1\r\n$1\r\nx\r\n") -> Done, Array [Integer 1, BulkString "x"]
//   parseResp("?\r\n")                   -> Invalid, "unknown RESP type byte '?'"
//   encodeCommand(out, {"SET", "k", "v"}) appends "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
//
// The parser is stateless: it parses from the start of what it is given and reports Incomplete
// until a whole value is there. A caller keeps unconsumed bytes and calls again with more. A bulk
// string's body is never scanned before it has fully arrived (its length is in its header), so
// re-parsing a large value as it trickles in costs its header, not its bytes. Replies on this
// path are small (placement, refresh counts, pub/sub messages); hostile or corrupt input is
// bounded by RespLimits (size, nesting, element count) and answered Invalid, never by allocating
// what a header claims.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace sticky::proxy::redis {

enum class RespType {
  SimpleString,  // +OK
  Error,         // -ERR message (and RESP3 blob errors, !<len>)
  Integer,       // :42
  BulkString,    // $3 abc
  Array,         // *N ...
  Null,          // $-1, *-1, RESP3 _
  Boolean,       // RESP3 #t / #f
  Double,        // RESP3 ,3.14 (kept as text in `text`)
  BigNumber,     // RESP3 (1234... (kept as text)
  Verbatim,      // RESP3 =<len> txt:... (`text` without the "txt:" prefix)
  Map,           // RESP3 %N: `elements` holds key, value, key, value, ...
  Set,           // RESP3 ~N
  Push,          // RESP3 >N (out-of-band: pub/sub messages, invalidations)
};

std::string_view typeName(RespType type);

struct RespValue {
  RespType type = RespType::Null;
  std::string text;                 // SimpleString, Error, BulkString, Double, BigNumber, Verbatim
  int64_t integer = 0;              // Integer; Boolean as 0/1
  std::vector<RespValue> elements;  // Array, Map (flattened pairs), Set, Push

  bool isNull() const { return type == RespType::Null; }
  bool isError() const { return type == RespType::Error; }
  /// SimpleString, BulkString or Verbatim: the types a string reply can come as.
  bool isString() const {
    return type == RespType::SimpleString || type == RespType::BulkString ||
           type == RespType::Verbatim;
  }
  /// Array, Set or Push.
  bool isList() const {
    return type == RespType::Array || type == RespType::Set || type == RespType::Push;
  }
};

/// Bounds on what one value may claim, so corrupt or hostile input is refused, not allocated.
struct RespLimits {
  size_t max_bulk_bytes = 512 * 1024 * 1024;  // Redis's own proto-max-bulk-len default
  size_t max_elements = 1024 * 1024;          // per aggregate (Array, Map pairs x2, Set, Push)
  size_t max_depth = 32;                      // nesting of aggregates
  size_t max_line_bytes = 64 * 1024;          // a simple string, error or number line
};

struct RespParse {
  enum class Status { Done, Incomplete, Invalid };
  Status status = Status::Incomplete;
  size_t consumed = 0;  // bytes of the input the value took (Done only)
  RespValue value;      // Done only
  std::string error;    // Invalid only: what was wrong, in one sentence
};

/// Parses one value from the start of `input`.
RespParse parseResp(std::string_view input, const RespLimits& limits = {});

/// Appends `args` as one command (an array of bulk strings) to `out`.
void encodeCommand(std::string& out, std::initializer_list<std::string_view> args);
void encodeCommand(std::string& out, const std::vector<std::string>& args);

/// A value as text for logs and test messages: "OK", "(nil)", "(error) ERR x", "[1, \"a\"]".
std::string describe(const RespValue& value);

}  // namespace sticky::proxy::redis
