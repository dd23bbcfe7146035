#include "controller/log.h"

#include <doctest/doctest.h>

#include <vector>

namespace sticky::op {
namespace {

TEST_CASE("log lines are key=value with quoting where needed") {
  CHECK(formatLogLine(LogLevel::Info, "config pushed", {{"version", "abc"}, {"routes", "3"}}) ==
        "level=info msg=\"config pushed\" version=abc routes=3");
  CHECK(formatLogLine(LogLevel::Warn, "x", {{"error", "say \"hi\"\nbye"}, {"empty", ""}}) ==
        "level=warn msg=x error=\"say \\\"hi\\\"\\nbye\" empty=\"\"");
}

TEST_CASE("the logger filters by level and prefixes a timestamp") {
  std::vector<std::string> lines;
  Logger logger(LogLevel::Warn, [&](const std::string& l) { lines.push_back(l); });
  logger.info("hidden");
  logger.warn("shown", {{"k", "v"}});
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("ts=", 0) == 0);
  CHECK(lines[0].find(" level=warn msg=shown k=v") != std::string::npos);
  LogLevel level;
  CHECK(parseLogLevel("debug", level));
  CHECK((level == LogLevel::Debug));
  CHECK_FALSE(parseLogLevel("verbose", level));
}

}  // namespace
}  // namespace sticky::op
