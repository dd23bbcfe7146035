#include "controller/log.h"

#include <chrono>
#include <cstdio>
#include <mutex>

#include "controller/status.h"

namespace sticky::op {
namespace {

std::string_view levelName(LogLevel level) {
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

void appendValue(std::string& out, std::string_view value) {
  bool quote = value.empty() || value.find_first_of(" \"=\t\n") != std::string_view::npos;
  if (!quote) {
    out += value;
    return;
  }
  out += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  out += '"';
}

std::mutex& stderrMutex() {
  static std::mutex m;
  return m;
}

}  // namespace

bool parseLogLevel(std::string_view text, LogLevel& out) {
  for (LogLevel l : {LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error}) {
    if (text == levelName(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

std::string formatLogLine(LogLevel level, std::string_view message,
                          std::initializer_list<LogField> fields) {
  std::string line = "level=";
  line += levelName(level);
  line += " msg=";
  appendValue(line, message);
  for (const auto& [key, value] : fields) {
    line += ' ';
    line += key;
    line += '=';
    appendValue(line, value);
  }
  return line;
}

Logger::Logger(LogLevel level, Sink sink) : level_(level), sink_(std::move(sink)) {}

void Logger::log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  if (!enabled(level)) return;
  std::string line =
      "ts=" + formatMicroTime(WallClock::now()) + " " + formatLogLine(level, message, fields);
  if (sink_) {
    sink_(line);
    return;
  }
  std::lock_guard lock(stderrMutex());
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace sticky::op
