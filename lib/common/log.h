#pragma once
// One line per meaningful event, to stderr: "2026-11-21T10:00:00.123Z info config applied ...".
// Thread-safe; not used per request above debug level.

#include <optional>
#include <string_view>

namespace sticky {

enum class LogLevel { Debug, Info, Warn, Error };

/// "debug", "info", "warn" (or "warning"), "error"; nullopt for anything else.
std::optional<LogLevel> parseLogLevel(std::string_view text);
void setLogLevel(LogLevel level);
bool logEnabled(LogLevel level);
void logLine(LogLevel level, std::string_view message);

inline void logDebug(std::string_view m) {
  if (logEnabled(LogLevel::Debug)) logLine(LogLevel::Debug, m);
}
inline void logInfo(std::string_view m) {
  logLine(LogLevel::Info, m);
}
inline void logWarn(std::string_view m) {
  logLine(LogLevel::Warn, m);
}
inline void logError(std::string_view m) {
  logLine(LogLevel::Error, m);
}

}  // namespace sticky
