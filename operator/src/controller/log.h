#pragma once
// The operator's structured log: one line per meaningful event, key=value pairs after a
// timestamp and level, e.g.
//   ts=2026-11-21T19:53:00.123456Z level=info msg="config pushed" version=1a2b routes=3
// Values with spaces, quotes or '=' are quoted. Thread-safe; writes to stderr by default.

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace sticky::op {

enum class LogLevel { Debug, Info, Warn, Error };

/// "debug", "info", "warn" or "error"; anything else is an error naming the choices.
bool parseLogLevel(std::string_view text, LogLevel& out);

using LogField = std::pair<std::string_view, std::string>;

class Logger {
 public:
  using Sink = std::function<void(const std::string& line)>;
  explicit Logger(LogLevel level = LogLevel::Info, Sink sink = {});

  void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});
  void debug(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::Debug, m, f);
  }
  void info(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::Info, m, f);
  }
  void warn(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::Warn, m, f);
  }
  void error(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::Error, m, f);
  }
  bool enabled(LogLevel level) const { return level >= level_; }

 private:
  LogLevel level_;
  Sink sink_;
};

/// key=value formatting of one line (without timestamp), exposed for tests.
std::string formatLogLine(LogLevel level, std::string_view message,
                          std::initializer_list<LogField> fields);

}  // namespace sticky::op
