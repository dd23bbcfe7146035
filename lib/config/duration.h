#pragma once
// Durations as the config writes them: Go-style "30m", "1h30m", "250ms", "10s".

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace sticky {

using Duration = std::chrono::milliseconds;

/// "30m", "1h30m", "250ms", "1.5s", "0"; units ms, s, m, h. An error (one sentence naming the
/// text and what is wrong with it) for anything else, for a negative value and for a value finer
/// than a millisecond.
Result<Duration> parseDuration(std::string_view text);
/// The shortest exact form: 30min -> "30m", 90min -> "1h30m", 250ms -> "250ms", 0 -> "0s".
std::string formatDuration(Duration d);

}  // namespace sticky
