// parseDuration/formatDuration: exact integer arithmetic on milliseconds, no floating point.

#include "config/duration.h"

#include <cctype>
#include <cstdint>

#include "config/json_reader.h"
#include "config/schema.h"

namespace sticky {

Result<Duration> parseDuration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return fail("must be a duration " + std::string(schema::kDurationHint) + ", not " +
                quote(text) + " (" + std::string(why) + ")");
  };
  if (text.empty()) return bad("empty");
  if (text == "0") return Duration(0);
  constexpr uint64_t kMaxMs = uint64_t{1} << 52;  // ~142,000 years; keeps the arithmetic exact
  uint64_t total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    uint64_t whole = 0;
    size_t whole_digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (whole > kMaxMs) return bad("too large");
      whole = whole * 10 + static_cast<uint64_t>(text[i] - '0');
      ++i;
      ++whole_digits;
    }
    uint64_t frac = 0, frac_scale = 1;
    size_t frac_digits = 0;
    if (i < text.size() && text[i] == '.') {
      ++i;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        if (frac_digits < 9) {
          frac = frac * 10 + static_cast<uint64_t>(text[i] - '0');
          frac_scale *= 10;
        } else if (text[i] != '0') {
          return bad("finer than a millisecond");
        }
        ++i;
        ++frac_digits;
      }
      if (frac_digits == 0) return bad("a '.' must be followed by digits");
    }
    if (whole_digits == 0 && frac_digits == 0) return bad("expected a number before each unit");
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    uint64_t unit_ms = 0;
    if (unit == "ms") {
      unit_ms = 1;
    } else if (unit == "s") {
      unit_ms = 1000;
    } else if (unit == "m") {
      unit_ms = 60 * 1000;
    } else if (unit == "h") {
      unit_ms = 3600 * 1000;
    } else if (unit.empty()) {
      return bad("missing unit; use ms, s, m or h");
    } else {
      return bad("unknown unit " + quote(unit) + "; use ms, s, m or h");
    }
    if (whole > kMaxMs / unit_ms) return bad("too large");
    uint64_t part = whole * unit_ms;
    if (frac != 0) {
      uint64_t scaled = frac * unit_ms;  // frac < 1e9, unit_ms <= 3.6e6: fits in 64 bits
      if (scaled % frac_scale != 0) return bad("finer than a millisecond");
      part += scaled / frac_scale;
    }
    total_ms += part;
    if (total_ms > kMaxMs) return bad("too large");
  }
  return Duration(static_cast<int64_t>(total_ms));
}

std::string formatDuration(Duration d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  int64_t h = ms / 3600000;
  ms %= 3600000;
  int64_t m = ms / 60000;
  ms %= 60000;
  int64_t s = ms / 1000;
  ms %= 1000;
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (s) out += std::to_string(s) + "s";
  if (ms) out += std::to_string(ms) + "ms";
  return out;
}

}  // namespace sticky
