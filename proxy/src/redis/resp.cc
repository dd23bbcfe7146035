#include "redis/resp.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace sticky::proxy::redis {
namespace {

enum class Step { Ok, Incomplete, Invalid };

// One parse over one input. Every method either advances pos_ past a whole piece (Ok), leaves
// the outcome Incomplete (more bytes may complete it), or records error_ (Invalid).
class Parser {
 public:
  Parser(std::string_view in, const RespLimits& limits) : in_(in), limits_(limits) {}

  Step value(RespValue& out, size_t depth);
  size_t pos() const { return pos_; }
  std::string takeError() { return std::move(error_); }

 private:
  Step invalid(std::string message) {
    error_ = std::move(message);
    return Step::Invalid;
  }
  Step line(std::string_view& out);
  Step integerLine(int64_t& out, std::string_view what);
  Step blob(int64_t length, std::string& out);
  Step aggregate(RespValue& out, RespType type, int64_t count, size_t depth);

  std::string_view in_;
  const RespLimits& limits_;
  size_t pos_ = 0;
  std::string error_;
};

std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 40)) {
    if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
      out += kHex[static_cast<unsigned char>(c) & 0xf];
    }
  }
  if (text.size() > 40) out += "...";
  return out;
}

// Up to (not including) the next CRLF; pos_ moves past the CRLF. A line longer than
// max_line_bytes is Invalid whether or not its CRLF has arrived yet, so the verdict does not
// depend on how the bytes were split (found by fuzz/resp_fuzz.cc).
Step Parser::line(std::string_view& out) {
  size_t end = in_.find_first_of("\r\n", pos_);
  size_t length = (end == std::string_view::npos ? in_.size() : end) - pos_;
  if (length > limits_.max_line_bytes) {
    return invalid("a RESP line is longer than " + std::to_string(limits_.max_line_bytes) +
                   " bytes");
  }
  if (end == std::string_view::npos) return Step::Incomplete;
  if (in_[end] == '\n') return invalid("a RESP line ends in LF without CR");
  if (end + 1 == in_.size()) return Step::Incomplete;
  if (in_[end + 1] != '\n') return invalid("a RESP line has a CR not followed by LF");
  out = in_.substr(pos_, end - pos_);
  pos_ = end + 2;
  return Step::Ok;
}

bool parseInt64(std::string_view text, int64_t& out) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

Step Parser::integerLine(int64_t& out, std::string_view what) {
  std::string_view text;
  if (Step s = line(text); s != Step::Ok) return s;
  if (!parseInt64(text, out)) {
    return invalid(std::string(what) + " '" + printable(text) + "' is not a 64-bit integer");
  }
  return Step::Ok;
}

// `length` bytes then CRLF. The body is not looked at until all of it has arrived.
Step Parser::blob(int64_t length, std::string& out) {
  if (length < 0) return invalid("a RESP length of " + std::to_string(length) + " is negative");
  if (static_cast<uint64_t>(length) > limits_.max_bulk_bytes) {
    return invalid("a RESP bulk string of " + std::to_string(length) + " bytes is over the " +
                   std::to_string(limits_.max_bulk_bytes) + "-byte limit");
  }
  size_t n = static_cast<size_t>(length);
  if (in_.size() - pos_ < n + 2) return Step::Incomplete;
  if (in_[pos_ + n] != '\r' || in_[pos_ + n + 1] != '\n') {
    return invalid("a RESP bulk string of " + std::to_string(n) + " bytes is not followed by CRLF");
  }
  out.assign(in_.substr(pos_, n));
  pos_ += n + 2;
  return Step::Ok;
}

Step Parser::aggregate(RespValue& out, RespType type, int64_t count, size_t depth) {
  out.type = type;
  if (count < 0) return invalid("a RESP aggregate of " + std::to_string(count) + " elements");
  uint64_t elements = static_cast<uint64_t>(count) * (type == RespType::Map ? 2 : 1);
  if (elements > limits_.max_elements) {
    return invalid("a RESP " + std::string(typeName(type)) + " of " + std::to_string(count) +
                   " elements is over the " + std::to_string(limits_.max_elements) +
                   "-element limit");
  }
  if (depth + 1 > limits_.max_depth) {
    return invalid("RESP aggregates nested deeper than " + std::to_string(limits_.max_depth));
  }
  // Every element takes at least 3 bytes ("_\r\n"): never reserve for more than could be here.
  out.elements.reserve(std::min<size_t>(elements, (in_.size() - pos_) / 3));
  for (uint64_t i = 0; i < elements; ++i) {
    if (Step s = value(out.elements.emplace_back(), depth + 1); s != Step::Ok) return s;
  }
  return Step::Ok;
}

Step Parser::value(RespValue& out, size_t depth) {
  if (pos_ >= in_.size()) return Step::Incomplete;
  char kind = in_[pos_++];
  std::string_view text;
  int64_t n = 0;
  switch (kind) {
    case '+':
    case '-':
      out.type = kind == '+' ? RespType::SimpleString : RespType::Error;
      if (Step s = line(text); s != Step::Ok) return s;
      out.text.assign(text);
      return Step::Ok;
    case ':':
      out.type = RespType::Integer;
      return integerLine(out.integer, "an integer reply");
    case '$':
    case '!':
    case '=':
      if (Step s = integerLine(n, "a bulk string length"); s != Step::Ok) return s;
      if (n == -1 && kind == '$') {
        out.type = RespType::Null;
        return Step::Ok;
      }
      out.type =
          kind == '$' ? RespType::BulkString : (kind == '!' ? RespType::Error : RespType::Verbatim);
      if (Step s = blob(n, out.text); s != Step::Ok) return s;
      if (kind == '=') {
        if (out.text.size() < 4 || out.text[3] != ':') {
          return invalid("a RESP verbatim string does not start with a 3-letter format and ':'");
        }
        out.text.erase(0, 4);
      }
      return Step::Ok;
    case '*':
    case '%':
    case '~':
    case '>':
      if (Step s = integerLine(n, "an aggregate length"); s != Step::Ok) return s;
      if (n == -1 && kind == '*') {
        out.type = RespType::Null;
        return Step::Ok;
      }
      return aggregate(out,
                       kind == '*'   ? RespType::Array
                       : kind == '%' ? RespType::Map
                       : kind == '~' ? RespType::Set
                                     : RespType::Push,
                       n, depth);
    case '_':
      out.type = RespType::Null;
      if (Step s = line(text); s != Step::Ok) return s;
      if (!text.empty()) return invalid("a RESP null has text after '_'");
      return Step::Ok;
    case '#':
      out.type = RespType::Boolean;
      if (Step s = line(text); s != Step::Ok) return s;
      if (text != "t" && text != "f") {
        return invalid("a RESP boolean is '" + printable(text) + "', not 't' or 'f'");
      }
      out.integer = text == "t" ? 1 : 0;
      return Step::Ok;
    case ',':
    case '(':
      out.type = kind == ',' ? RespType::Double : RespType::BigNumber;
      if (Step s = line(text); s != Step::Ok) return s;
      if (text.empty()) return invalid("a RESP number line is empty");
      out.text.assign(text);
      return Step::Ok;
    case '|':
      return invalid("RESP3 attributes are not supported (this client speaks RESP2)");
    default:
      return invalid("unknown RESP type byte '" + printable(std::string_view(&kind, 1)) + "'");
  }
}

size_t decimalLength(size_t n) {
  size_t length = 1;
  for (; n >= 10; n /= 10) ++length;
  return length;
}

char* putDecimal(char* at, size_t n) {
  return std::to_chars(at, at + 20, n).ptr;  // 20 digits hold any size_t
}

char* putLine(char* at, char type, size_t n) {
  *at++ = type;
  at = putDecimal(at, n);
  *at++ = '\r';
  *at++ = '\n';
  return at;
}

// One resize, then the bytes written in place: a command costs no more than its bytes.
template <class Args>
void encode(std::string& out, const Args& args) {
  size_t size = 3 + decimalLength(args.size());
  for (std::string_view arg : args) size += 5 + decimalLength(arg.size()) + arg.size();
  const size_t start = out.size();
  out.resize(start + size);
  char* at = putLine(out.data() + start, '*', args.size());
  for (std::string_view arg : args) {
    at = putLine(at, '$', arg.size());
    if (!arg.empty()) std::memcpy(at, arg.data(), arg.size());
    at += arg.size();
    *at++ = '\r';
    *at++ = '\n';
  }
}

}  // namespace

std::string_view typeName(RespType type) {
  switch (type) {
    case RespType::SimpleString:
      return "simple string";
    case RespType::Error:
      return "error";
    case RespType::Integer:
      return "integer";
    case RespType::BulkString:
      return "bulk string";
    case RespType::Array:
      return "array";
    case RespType::Null:
      return "null";
    case RespType::Boolean:
      return "boolean";
    case RespType::Double:
      return "double";
    case RespType::BigNumber:
      return "big number";
    case RespType::Verbatim:
      return "verbatim string";
    case RespType::Map:
      return "map";
    case RespType::Set:
      return "set";
    case RespType::Push:
      return "push";
  }
  return "unknown";
}

RespParse parseResp(std::string_view input, const RespLimits& limits) {
  RespParse result;
  Parser parser(input, limits);
  switch (parser.value(result.value, 0)) {
    case Step::Ok:
      result.status = RespParse::Status::Done;
      result.consumed = parser.pos();
      break;
    case Step::Incomplete:
      result.status = RespParse::Status::Incomplete;
      result.value = {};
      break;
    case Step::Invalid:
      result.status = RespParse::Status::Invalid;
      result.value = {};
      result.error = parser.takeError();
      break;
  }
  return result;
}

void encodeCommand(std::string& out, std::initializer_list<std::string_view> args) {
  encode(out, args);
}

void encodeCommand(std::string& out, const std::vector<std::string>& args) {
  encode(out, args);
}

std::string describe(const RespValue& value) {
  switch (value.type) {
    case RespType::Null:
      return "(nil)";
    case RespType::Error:
      return "(error) " + value.text;
    case RespType::Integer:
      return std::to_string(value.integer);
    case RespType::Boolean:
      return value.integer ? "true" : "false";
    case RespType::SimpleString:
    case RespType::Double:
    case RespType::BigNumber:
      return value.text;
    case RespType::BulkString:
    case RespType::Verbatim: {
      // Appended piecewise: GCC 12 at -O3 reports a false -Wrestrict for "\"" + string&&.
      std::string out(1, '"');
      out += printable(value.text);
      out += '"';
      return out;
    }
    case RespType::Array:
    case RespType::Map:
    case RespType::Set:
    case RespType::Push: {
      std::string out = value.type == RespType::Map ? "{" : "[";
      for (size_t i = 0; i < value.elements.size(); ++i) {
        if (i > 0) out += (value.type == RespType::Map && i % 2 == 1) ? ": " : ", ";
        out += describe(value.elements[i]);
      }
      return out + (value.type == RespType::Map ? "}" : "]");
    }
  }
  return "?";
}

}  // namespace sticky::proxy::redis
