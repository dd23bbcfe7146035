#include "common/log.h"

#include <doctest/doctest.h>

#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>
#include <vector>

namespace sticky {
namespace {

using namespace std::chrono_literals;

// 2026-11-21T10:00:00.123456Z
const LogClock::time_point kTs =
    LogClock::time_point(std::chrono::sys_days(std::chrono::year(2026) / 11 / 21)) + 10h + 123456us;

std::string text(LogLevel level, std::string_view message, LogFields fields = {}) {
  return formatLogLine(LogFormat::Text, kTs, level, message, fields);
}

nlohmann::json json(LogLevel level, std::string_view message, LogFields fields = {}) {
  std::string line = formatLogLine(LogFormat::Json, kTs, level, message, fields);
  CHECK(line.find('\n') == std::string::npos);
  return nlohmann::json::parse(line);  // throws (fails the test) if it is not JSON
}

/// Restores the process-wide settings a test changes.
struct ProcessLogCapture {
  std::mutex mu;
  std::vector<std::string> lines;
  ProcessLogCapture() {
    setLogSink([this](const std::string& l) {
      std::lock_guard lock(mu);
      lines.push_back(l);
    });
  }
  ~ProcessLogCapture() {
    setLogSink({});
    setLogLevel(LogLevel::Info);
    setLogFormat(LogFormat::Text);
  }
};

// From the operator's logfmt logger (test/operator/controller/log_test.cc), the format changed
// deliberately: `ts=... level=info msg="config pushed" k=v` is now `<ts> info config pushed k=v`
// in both binaries. Values are quoted and escaped as before.
TEST_CASE("text lines are time, level, message, then key=value with quoting where needed") {
  CHECK(text(LogLevel::Info, "config pushed", {{"version", "abc"}, {"routes", "3"}}) ==
        "2026-11-21T10:00:00.123Z info config pushed version=abc routes=3");
  CHECK(text(LogLevel::Warn, "x", {{"error", "say \"hi\"\nbye"}, {"empty", ""}}) ==
        "2026-11-21T10:00:00.123Z warn x error=\"say \\\"hi\\\"\\nbye\" empty=\"\"");
  CHECK(text(LogLevel::Error, "two\nlines\tand\x01", {{"a", "b=c"}, {"path", "C:\\x"}}) ==
        "2026-11-21T10:00:00.123Z error two\\nlines\\tand\\u0001 a=\"b=c\" path=\"C:\\\\x\"");
  CHECK(text(LogLevel::Debug, "n", {{"int", 42}, {"neg", -7L}, {"ok", true}, {"ratio", 0.5}}) ==
        "2026-11-21T10:00:00.123Z debug n int=42 neg=-7 ok=true ratio=0.5");
}

TEST_CASE("the logger filters by level and prefixes a timestamp") {
  std::vector<std::string> lines;
  Logger logger(LogLevel::Warn, [&](const std::string& l) { lines.push_back(l); });
  logger.info("hidden");
  logger.warn("shown", {{"k", "v"}});
  REQUIRE(lines.size() == 1);
  CHECK(std::regex_match(lines[0], std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z .*)")));
  CHECK(lines[0].find(" warn shown k=v") != std::string::npos);
  CHECK_FALSE(logger.enabled(LogLevel::Info));
  CHECK(logger.enabled(LogLevel::Error));
  CHECK((parseLogLevel("debug") == LogLevel::Debug));
  CHECK((parseLogLevel("warning") == LogLevel::Warn));
  CHECK_FALSE(parseLogLevel("verbose"));
  CHECK_FALSE(parseLogLevel("INFO"));
  CHECK((parseLogFormat("json") == LogFormat::Json));
  CHECK_FALSE(parseLogFormat("logfmt"));
}

TEST_CASE("json lines are one object: ts, level, msg, then the fields in order") {
  std::string line = formatLogLine(LogFormat::Json, kTs, LogLevel::Info, "config pushed",
                                   {{"version", "abc"}, {"routes", 3}, {"leader", false}});
  CHECK(line == R"({"ts":"2026-11-21T10:00:00.123456Z","level":"info","msg":"config pushed",)"
                R"("version":"abc","routes":3,"leader":false})");
  auto j = json(LogLevel::Warn, "x",
                {{"ratio", 1.25}, {"nan", std::numeric_limits<double>::quiet_NaN()}});
  CHECK(j["level"] == "warn");
  CHECK(j["ratio"] == 1.25);
  CHECK(j["nan"] == "NaN");  // not a JSON number: written as text
}

TEST_CASE("json escapes quotes, backslashes, newlines and control characters, and repairs UTF-8") {
  std::string nasty = "say \"hi\"\\\nbye\r\t\x01\x1f\x7f end";
  auto j = json(LogLevel::Error, nasty, {{nasty, nasty}, {"utf8", "caf\xC3\xA9 \xE2\x82\xAC"}});
  CHECK(j["msg"] == nasty);
  CHECK(j[nasty] == nasty);
  CHECK(j["utf8"] == "café €");
  std::string line = formatLogLine(LogFormat::Json, kTs, LogLevel::Info, nasty);
  for (char c : line) CHECK(static_cast<unsigned char>(c) >= 0x20);  // control chars escaped
  // Bytes that are not UTF-8 (a client's header, say) become U+FFFD instead of breaking parsers.
  auto bad = json(LogLevel::Info, "bad \xFF\xC3 \xED\xA0\x80 \xF0\x82\x82\xAC ok");
  CHECK(bad["msg"] ==
        "bad \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "
        "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD ok");
}

TEST_CASE("the free functions follow the process-wide level, format and sink") {
  ProcessLogCapture capture;
  setLogLevel(LogLevel::Warn);
  logDebug("no");
  logInfo("no", {{"k", "v"}});
  logWarn("yes", {{"k", "v"}});
  setLogFormat(LogFormat::Json);
  logError("json", {{"n", 1}});
  Logger process_logger;  // follows the process-wide settings too
  process_logger.info("no");
  process_logger.error("object");
  setLogLevel(LogLevel::Debug);
  CHECK(logEnabled(LogLevel::Debug));
  logDebug("debug now");
  REQUIRE(capture.lines.size() == 4);
  CHECK(capture.lines[0].ends_with(" warn yes k=v"));
  auto j = nlohmann::json::parse(capture.lines[1]);
  CHECK(j["msg"] == "json");
  CHECK(j["n"] == 1);
  CHECK(nlohmann::json::parse(capture.lines[2])["msg"] == "object");
  CHECK(nlohmann::json::parse(capture.lines[3])["level"] == "debug");
  // A logger with its own format keeps it whatever the process uses.
  std::vector<std::string> own;
  Logger text_logger(
      LogLevel::Info, [&](const std::string& l) { own.push_back(l); }, LogFormat::Text);
  text_logger.info("mine");
  REQUIRE(own.size() == 1);
  CHECK(own[0].ends_with(" info mine"));
}

TEST_CASE("lines from many threads stay whole") {
  ProcessLogCapture capture;
  setLogFormat(LogFormat::Json);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) logInfo("event", {{"thread", t}, {"i", i}});
    });
  for (auto& th : threads) th.join();
  REQUIRE(capture.lines.size() == 800);
  std::vector<int> next(4, 0);
  for (const auto& line : capture.lines) {
    auto j = nlohmann::json::parse(line);
    int t = j["thread"];
    CHECK(j["i"] == next[t]++);  // each thread's lines in its order
  }
}

}  // namespace
}  // namespace sticky
