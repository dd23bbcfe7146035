#include "metrics/exposition.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <system_error>

namespace sticky::metrics {

std::string formatFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // The shortest round-trip digits, in scientific form: "-d.ddde+XX".
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  if (ec != std::errc()) return "NaN";
  std::string_view sci(buf, static_cast<size_t>(end - buf));
  std::string out;
  if (!sci.empty() && sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  int exp = std::atoi(std::string(sci.substr(e + 1)).c_str());
  if (digits == "0") exp = 0;

  if (exp < -4 || exp >= 6) {  // %e: d[.ddd]e±XX, at least two exponent digits
    out.push_back(digits[0]);
    if (digits.size() > 1) {
      out.push_back('.');
      out.append(digits, 1, std::string::npos);
    }
    out.push_back('e');
    out.push_back(exp < 0 ? '-' : '+');
    int a = std::abs(exp);
    if (a < 10) out.push_back('0');
    out += std::to_string(a);
    return out;
  }
  // %f with exactly the digits needed.
  int dp = exp + 1;  // digits before the decimal point
  int nd = static_cast<int>(digits.size());
  if (dp <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-dp), '0');
    out += digits;
  } else if (dp >= nd) {
    out += digits;
    out.append(static_cast<size_t>(dp - nd), '0');
  } else {
    out.append(digits, 0, static_cast<size_t>(dp));
    out.push_back('.');
    out.append(digits, static_cast<size_t>(dp), std::string::npos);
  }
  return out;
}

namespace {

// Backslash and newline escaped, and the double quote too when `quote` (label values; HELP text
// keeps it), as the text format 0.0.4 asks.
std::string escaped(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string escapeLabelValue(std::string_view value) {
  return escaped(value, true);
}

std::string escapeHelp(std::string_view text) {
  return escaped(text, false);
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escapeHelp(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void Exposition::writeSample(std::string_view name, std::string_view suffix,
                             std::initializer_list<Label> labels, const Label* extra,
                             std::string_view value) {
  out_ += name;
  out_ += suffix;
  if (labels.size() > 0 || extra) {
    out_ += '{';
    bool first = true;
    auto write = [&](const Label& label) {
      if (!first) out_ += ',';
      first = false;
      out_ += label.first;
      out_ += "=\"";
      out_ += escapeLabelValue(label.second);
      out_ += '"';
    };
    for (const Label& label : labels) write(label);
    if (extra) write(*extra);
    out_ += '}';
  }
  out_ += ' ';
  out_ += value;
  out_ += '\n';
}

void Exposition::sample(std::string_view name, std::initializer_list<Label> labels,
                        std::string_view value) {
  writeSample(name, {}, labels, nullptr, value);
}

void Exposition::sample(std::string_view name, std::initializer_list<Label> labels,
                        uint64_t value) {
  writeSample(name, {}, labels, nullptr, std::to_string(value));
}

void Exposition::sample(std::string_view name, std::initializer_list<Label> labels, int64_t value) {
  writeSample(name, {}, labels, nullptr, std::to_string(value));
}

void Exposition::sampleFloat(std::string_view name, std::initializer_list<Label> labels,
                             double value) {
  writeSample(name, {}, labels, nullptr, formatFloat(value));
}

void Exposition::histogram(std::string_view name, std::initializer_list<Label> labels,
                           std::span<const double> bounds, std::span<const uint64_t> per_bucket,
                           double sum, uint64_t count) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (i < per_bucket.size()) cumulative += per_bucket[i];
    std::string le = formatFloat(bounds[i]);
    Label extra{"le", le};
    writeSample(name, "_bucket", labels, &extra, std::to_string(cumulative));
  }
  if (bounds.size() < per_bucket.size()) cumulative += per_bucket[bounds.size()];
  Label inf{"le", "+Inf"};
  writeSample(name, "_bucket", labels, &inf, std::to_string(cumulative));
  writeSample(name, "_sum", labels, nullptr, formatFloat(sum));
  writeSample(name, "_count", labels, nullptr, std::to_string(count));
}

}  // namespace sticky::metrics
