#pragma once
// The log of both binaries: one line per meaningful event, to stderr, in one of two formats
// chosen by --log-format (common/flags.h):
//
//   text (for people):       2026-11-21T10:00:00.123Z info config pushed version=1a2b routes=3
//   json (for log pipelines): {"ts":"2026-11-21T10:00:00.123456Z","level":"info",
//                              "msg":"config pushed","version":"1a2b","routes":3}   (one line)
//
// Text: the UTC time (ms), the level, the message, then key=value fields; a value with a space,
// '"', '=' or a control character is quoted and escaped, and control characters in the message
// are escaped, so an event is always one line. JSON: one object per line, `ts` (RFC 3339 UTC,
// µs), `level`, `msg`, then the fields in order; numbers and booleans stay JSON numbers and
// booleans, text is escaped as RFC 8259 asks (bytes that are not UTF-8 become U+FFFD).
//
// Two ways in, the same lines out:
//   logInfo("config applied", {{"version", v}});           process-wide: level and format from
//                                                          setLogLevel/setLogFormat (the flags)
//   Logger logger; logger.info("config pushed", {...});     an object to hand to components; a
//                                                          test gives it its own level and a sink
// Thread-safe: a line is written whole, by one write under one mutex. The level is checked
// (one relaxed atomic load) before anything is formatted.

#include <chrono>
#include <concepts>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace sticky {

enum class LogLevel { Debug, Info, Warn, Error };
enum class LogFormat { Text, Json };

/// "debug", "info", "warn" (or "warning"), "error"; nullopt for anything else.
std::optional<LogLevel> parseLogLevel(std::string_view text);
/// "text" or "json"; nullopt for anything else.
std::optional<LogFormat> parseLogFormat(std::string_view text);
std::string_view logLevelName(LogLevel level);
std::string_view logFormatName(LogFormat format);

/// One key=value of a line. Text values are written as given; integers, floating-point numbers
/// and booleans are formatted (and stay numbers/booleans in JSON). Keys are code literals; the
/// JSON keys `ts`, `level` and `msg` are taken by the line itself.
struct LogField {
  enum class Kind { Text, Number, Bool };

  LogField(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  LogField(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), kind(Kind::Bool) {}
  template <class T>
  requires(std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char>)
      LogField(std::string_view k, T v)
      : key(k), value(std::to_string(v)), kind(Kind::Number) {}
  LogField(std::string_view k, double v);

  std::string_view key;
  std::string value;
  Kind kind = Kind::Text;
};

using LogFields = std::initializer_list<LogField>;
using LogClock = std::chrono::system_clock;

/// One whole line without the trailing newline, e.g. `2026-11-21T10:00:00.123Z warn x k=v`.
/// Pure; the loggers below call it with the current time.
std::string formatLogLine(LogFormat format, LogClock::time_point ts, LogLevel level,
                          std::string_view message, LogFields fields = {});

// ---- process-wide settings: set once by main() from the flags ---------------------------------

void setLogLevel(LogLevel level);
LogLevel logLevel();
void setLogFormat(LogFormat format);
LogFormat logFormat();
/// Where lines go: `sink` (called with each line, without '\n', under the log mutex) or, when
/// empty (the default), stderr. For tests of code that logs through the free functions.
void setLogSink(std::function<void(const std::string& line)> sink);

/// Whether a line at `level` would be written: check before building an expensive message.
bool logEnabled(LogLevel level);
void logLine(LogLevel level, std::string_view message, LogFields fields = {});

inline void logDebug(std::string_view m, LogFields f = {}) {
  if (logEnabled(LogLevel::Debug)) logLine(LogLevel::Debug, m, f);
}
inline void logInfo(std::string_view m, LogFields f = {}) {
  if (logEnabled(LogLevel::Info)) logLine(LogLevel::Info, m, f);
}
inline void logWarn(std::string_view m, LogFields f = {}) {
  if (logEnabled(LogLevel::Warn)) logLine(LogLevel::Warn, m, f);
}
inline void logError(std::string_view m, LogFields f = {}) {
  if (logEnabled(LogLevel::Error)) logLine(LogLevel::Error, m, f);
}

// ---- a logger object ---------------------------------------------------------------------------

class Logger {
 public:
  using Sink = std::function<void(const std::string& line)>;

  /// The process-wide logger: level, format and destination as set above.
  Logger() = default;
  /// Its own level; lines (without '\n') go to `sink`, or where the process-wide ones go when
  /// `sink` is empty; in `format`, or the process-wide format when none is given.
  explicit Logger(LogLevel level, Sink sink = {}, std::optional<LogFormat> format = {});

  void log(LogLevel level, std::string_view message, LogFields fields = {}) const;
  void debug(std::string_view m, LogFields f = {}) const { log(LogLevel::Debug, m, f); }
  void info(std::string_view m, LogFields f = {}) const { log(LogLevel::Info, m, f); }
  void warn(std::string_view m, LogFields f = {}) const { log(LogLevel::Warn, m, f); }
  void error(std::string_view m, LogFields f = {}) const { log(LogLevel::Error, m, f); }
  bool enabled(LogLevel level) const;

 private:
  std::optional<LogLevel> level_;  // empty: the process-wide level
  Sink sink_;                      // empty: the process-wide destination
  std::optional<LogFormat> format_;
};

}  // namespace sticky
