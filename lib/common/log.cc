#include "common/log.h"
#include "common/log_escape.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <mutex>

namespace sticky {

namespace {

std::atomic<LogLevel> g_level{LogLevel::Info};
std::atomic<LogFormat> g_format{LogFormat::Text};

// Guards the destination and keeps lines whole.
std::mutex g_mu;
Logger::Sink g_sink;  // guarded by g_mu; empty: stderr

using Buffer = fmt::memory_buffer;

void appendTime(Buffer& out, LogClock::time_point ts, bool micros) {
  auto since_epoch = ts.time_since_epoch();
  auto secs = std::chrono::floor<std::chrono::seconds>(since_epoch);
  std::time_t t = secs.count();
  std::tm tm{};
  gmtime_r(&t, &tm);
  auto sub = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch - secs).count();
  if (micros)
    fmt::format_to(std::back_inserter(out), "{:%Y-%m-%dT%H:%M:%S}.{:06}Z", tm, sub);
  else
    fmt::format_to(std::back_inserter(out), "{:%Y-%m-%dT%H:%M:%S}.{:03}Z", tm, sub / 1000);
}

/// Length of the valid UTF-8 sequence at the start of `s` (1-4), or 0 if it is not one.
size_t utf8Length(std::string_view s) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // UTF-16 surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

/// The escapes JSON needs (and the text format uses too): quote, backslash, control characters.
/// For JSON, bytes that are not UTF-8 become U+FFFD so that every line parses. `Out` is the
/// logger's fmt buffer or a std::string (the access log's).
template <class Out>
void appendEscaped(Out& out, std::string_view s, bool json) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = json ? utf8Length(s.substr(i)) : 1;
      if (n == 0) {
        out.append(std::string_view("\xEF\xBF\xBD"));
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20 || c == 0x7F)
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        else
          out.push_back(static_cast<char>(c));
    }
    ++i;
  }
}

template <class Out>
void appendJsonString(Out& out, std::string_view s) {
  out.push_back('"');
  appendEscaped(out, s, true);
  out.push_back('"');
}

/// A text-format value: bare when it reads unambiguously, quoted and escaped otherwise.
template <class Out>
void appendTextValue(Out& out, std::string_view value) {
  bool quote = value.empty();
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F || c == '"' || c == '=' || c == '\\') {
      quote = true;
      break;
    }
  }
  if (!quote) {
    out.append(value);
    return;
  }
  out.push_back('"');
  appendEscaped(out, value, false);
  out.push_back('"');
}

/// The message of a text line: as written, but with control characters escaped (one line).
void appendTextMessage(Buffer& out, std::string_view message) {
  for (char ch : message) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) {
      appendEscaped(out, std::string_view(&ch, 1), false);
    } else {
      out.push_back(ch);
    }
  }
}

void formatInto(Buffer& out, LogFormat format, LogClock::time_point ts, LogLevel level,
                std::string_view message, LogFields fields) {
  if (format == LogFormat::Json) {
    out.append(std::string_view("{\"ts\":\""));
    appendTime(out, ts, true);
    out.append(std::string_view("\",\"level\":\""));
    out.append(logLevelName(level));
    out.append(std::string_view("\",\"msg\":"));
    appendJsonString(out, message);
    for (const auto& f : fields) {
      out.push_back(',');
      appendJsonString(out, f.key);
      out.push_back(':');
      if (f.kind == LogField::Kind::Text)
        appendJsonString(out, f.value);
      else
        out.append(f.value);
    }
    out.push_back('}');
    return;
  }
  appendTime(out, ts, false);
  out.push_back(' ');
  out.append(logLevelName(level));
  out.push_back(' ');
  appendTextMessage(out, message);
  for (const auto& f : fields) {
    out.push_back(' ');
    out.append(f.key);
    out.push_back('=');
    appendTextValue(out, f.value);
  }
}

void write(const Logger::Sink& own_sink, LogFormat format, LogLevel level, std::string_view message,
           LogFields fields) {
  Buffer buffer;
  formatInto(buffer, format, LogClock::now(), level, message, fields);
  std::lock_guard lock(g_mu);
  const Logger::Sink& sink = own_sink ? own_sink : g_sink;
  if (sink) {
    sink(fmt::to_string(buffer));
    return;
  }
  buffer.push_back('\n');
  std::fwrite(buffer.data(), 1, buffer.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

void appendLogJsonString(std::string& out, std::string_view s) {
  appendJsonString(out, s);
}

void appendLogTextValue(std::string& out, std::string_view value) {
  appendTextValue(out, value);
}

LogField::LogField(std::string_view k, double v) : key(k) {
  if (std::isfinite(v)) {
    value = fmt::format("{}", v);
    kind = Kind::Number;
  } else {
    value = std::isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf");  // not a JSON number: text
  }
}

std::optional<LogLevel> parseLogLevel(std::string_view text) {
  if (text == "debug") return LogLevel::Debug;
  if (text == "info") return LogLevel::Info;
  if (text == "warn" || text == "warning") return LogLevel::Warn;
  if (text == "error") return LogLevel::Error;
  return std::nullopt;
}

std::optional<LogFormat> parseLogFormat(std::string_view text) {
  if (text == "text") return LogFormat::Text;
  if (text == "json") return LogFormat::Json;
  return std::nullopt;
}

std::string_view logLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::Debug:
      return "debug";
    case LogLevel::Info:
      return "info";
    case LogLevel::Warn:
      return "warn";
    case LogLevel::Error:
      return "error";
  }
  return "info";
}

std::string_view logFormatName(LogFormat format) {
  return format == LogFormat::Json ? "json" : "text";
}

std::string formatLogLine(LogFormat format, LogClock::time_point ts, LogLevel level,
                          std::string_view message, LogFields fields) {
  Buffer buffer;
  formatInto(buffer, format, ts, level, message, fields);
  return fmt::to_string(buffer);
}

void setLogLevel(LogLevel level) {
  g_level.store(level, std::memory_order_relaxed);
}

LogLevel logLevel() {
  return g_level.load(std::memory_order_relaxed);
}

void setLogFormat(LogFormat format) {
  g_format.store(format, std::memory_order_relaxed);
}

LogFormat logFormat() {
  return g_format.load(std::memory_order_relaxed);
}

void setLogSink(std::function<void(const std::string& line)> sink) {
  std::lock_guard lock(g_mu);
  g_sink = std::move(sink);
}

bool logEnabled(LogLevel level) {
  return level >= g_level.load(std::memory_order_relaxed);
}

void logLine(LogLevel level, std::string_view message, LogFields fields) {
  if (!logEnabled(level)) return;
  write({}, logFormat(), level, message, fields);
}

Logger::Logger(LogLevel level, Sink sink, std::optional<LogFormat> format)
    : level_(level), sink_(std::move(sink)), format_(format) {}

bool Logger::enabled(LogLevel level) const {
  return level_ ? level >= *level_ : logEnabled(level);
}

void Logger::log(LogLevel level, std::string_view message, LogFields fields) const {
  if (!enabled(level)) return;
  write(sink_, format_.value_or(logFormat()), level, message, fields);
}

}  // namespace sticky
