#include "http/access_log.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "routing/placement.h"

namespace sticky::proxy {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// 2026-12-05T10:00:00.123Z
LogClock::time_point sampleTime() {
  return LogClock::time_point(std::chrono::seconds(1796464800)) + 123ms;
}

AccessEntry upstreamEntry() {
  AccessEntry e;
  e.time = sampleTime();
  e.duration = 1234us;
  e.route = "shop/web";
  e.pod = "web-1";
  e.method = "GET";
  e.target = "/cart?token=secret";
  e.key = "alice";
  e.status = 200;
  e.bytes_received = 112;
  e.bytes_sent = 342;
  return e;
}

std::string line(const AccessEntry& e, AccessLogOptions options = {}) {
  AccessLineFormatter formatter(options);
  std::string out;
  formatter.append(out, e);
  return out;
}

json parsed(const std::string& text) {
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  return json::parse(text);
}

std::string hex16(uint64_t h) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

TEST_CASE("access log - a JSON line has every field, in order, with numbers as numbers") {
  std::string text = line(upstreamEntry());
  CHECK(text ==
        "{\"time\":\"2026-12-05T10:00:00.123Z\",\"namespace\":\"shop\",\"stickyroute\":\"web\","
        "\"pod\":\"web-1\",\"status\":200,\"source\":\"upstream\",\"duration_ms\":1.234,"
        "\"bytes_received\":112,\"bytes_sent\":342,\"moved_from\":\"\",\"method\":\"GET\","
        "\"path\":\"/cart\",\"key_hash\":\"" +
            hex16(hashKey("alice")) + "\"}\n");
  json j = parsed(text);
  CHECK(j["status"].is_number_integer());
  CHECK(j["duration_ms"].get<double>() == doctest::Approx(1.234));
}

TEST_CASE("access log - a local reply: source proxy, no pod, the session's old pod") {
  AccessEntry e = upstreamEntry();
  e.pod = {};
  e.local = true;
  e.status = 503;
  e.moved_from = "web-0";
  e.duration = 7us;
  json j = parsed(line(e));
  CHECK(j["source"] == "proxy");
  CHECK(j["pod"] == "");
  CHECK(j["moved_from"] == "web-0");
  CHECK(j["status"] == 503);
  CHECK(j["duration_ms"].get<double>() == doctest::Approx(0.007));
}

TEST_CASE("access log - the route splits at the first slash, no route leaves both empty") {
  AccessEntry e = upstreamEntry();
  e.route = "team-a/api/v2";
  json j = parsed(line(e));
  CHECK(j["namespace"] == "team-a");
  CHECK(j["stickyroute"] == "api/v2");
  e.route = "static";
  j = parsed(line(e));
  CHECK(j["namespace"] == "");
  CHECK(j["stickyroute"] == "static");
  e.route = {};
  j = parsed(line(e));
  CHECK(j["namespace"] == "");
  CHECK(j["stickyroute"] == "");
}

TEST_CASE("access log - hostile paths, methods and keys stay one parseable JSON line") {
  AccessEntry e = upstreamEntry();
  std::string path = "/a\"b\\c\nd\re\tf\x01g\x7f\xff\xfeh?q=\"x\"\n";
  std::string key = "k\"}\n{\"status\":999,\"x\":\"\\";
  e.target = path;
  e.key = key;
  e.method = "GE\"T";
  AccessLogOptions options;
  options.key = AccessLogKey::Plain;
  options.path = AccessLogPath::Full;
  json j = parsed(line(e, options));
  // Every byte comes back as sent, except the ones that are not UTF-8 (U+FFFD each).
  std::string expected_path = "/a\"b\\c\nd\re\tf\x01g\x7f\xEF\xBF\xBD\xEF\xBF\xBDh?q=\"x\"\n";
  CHECK(j["path"] == expected_path);
  CHECK(j["key"] == key);
  CHECK(j["method"] == "GE\"T");
  CHECK(j["status"] == 200);  // the injected field did not take
  CHECK(j.size() == 13);
}

TEST_CASE("access log - key modes: none, hash (stable, 16 hex digits), plain") {
  AccessEntry e = upstreamEntry();
  AccessLogOptions options;

  options.key = AccessLogKey::None;
  json j = parsed(line(e, options));
  CHECK(!j.contains("key"));
  CHECK(!j.contains("key_hash"));

  options.key = AccessLogKey::Hash;
  j = parsed(line(e, options));
  CHECK(!j.contains("key"));
  std::string h = j["key_hash"];
  CHECK(h.size() == 16);
  CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(h == hex16(hashKey("alice")));
  CHECK(parsed(line(e, options))["key_hash"] == h);  // the same key, the same hash
  e.key = "bob";
  CHECK(parsed(line(e, options))["key_hash"] != h);
  e.key = std::nullopt;
  CHECK(parsed(line(e, options))["key_hash"] == "");  // no session header sent

  options.key = AccessLogKey::Plain;
  e.key = "alice";
  j = parsed(line(e, options));
  CHECK(j["key"] == "alice");
  CHECK(!j.contains("key_hash"));
}

TEST_CASE("access log - path modes: the query is left out unless asked for") {
  AccessEntry e = upstreamEntry();
  AccessLogOptions options;
  CHECK(parsed(line(e, options))["path"] == "/cart");
  options.path = AccessLogPath::Full;
  CHECK(parsed(line(e, options))["path"] == "/cart?token=secret");
  options.path = AccessLogPath::None;
  json j = parsed(line(e, options));
  CHECK(!j.contains("path"));
  CHECK(j["method"] == "GET");
}

TEST_CASE("access log - the text format reads as the logger's text lines") {
  AccessEntry e = upstreamEntry();
  AccessLogOptions options;
  options.format = LogFormat::Text;
  std::string text = line(e, options);
  CHECK(text ==
        "2026-12-05T10:00:00.123Z info access namespace=shop stickyroute=web pod=web-1 "
        "status=200 source=upstream duration_ms=1.234 bytes_received=112 bytes_sent=342 "
        "moved_from=\"\" method=GET path=/cart key_hash=" +
            hex16(hashKey("alice")) + "\n");
  e.target = "/x y\n\"z\"";
  text = line(e, options);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(text.find("path=\"/x y\\n\\\"z\\\"\"") != std::string::npos);
}

TEST_CASE("access log - the cached second follows the clock") {
  AccessLineFormatter formatter(AccessLogOptions{});
  AccessEntry e = upstreamEntry();
  std::string out;
  formatter.append(out, e);
  e.time += 999ms;  // 10:00:01.122
  formatter.append(out, e);
  e.time += 3600s + 5ms;  // 11:00:01.127
  formatter.append(out, e);
  std::vector<std::string> times;
  size_t at = 0;
  while ((at = out.find("\"time\":\"", at)) != std::string::npos) {
    times.push_back(out.substr(at + 8, 24));
    at += 8;
  }
  CHECK(times == std::vector<std::string>{"2026-12-05T10:00:00.123Z", "2026-12-05T10:00:01.122Z",
                                          "2026-12-05T11:00:01.127Z"});
}

TEST_CASE("access log - option names") {
  CHECK(parseAccessLogKey("none") == AccessLogKey::None);
  CHECK(parseAccessLogKey("hash") == AccessLogKey::Hash);
  CHECK(parseAccessLogKey("plain") == AccessLogKey::Plain);
  CHECK(!parseAccessLogKey("sha256"));
  CHECK(parseAccessLogPath("none") == AccessLogPath::None);
  CHECK(parseAccessLogPath("path") == AccessLogPath::Path);
  CHECK(parseAccessLogPath("full") == AccessLogPath::Full);
  CHECK(!parseAccessLogPath("query"));
}

std::string tempPath(const std::string& name) {
  char dir[] = "/tmp/sticky-access-log-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  return std::string(dir) + "/" + name;
}

TEST_CASE("access log - lines reach a file in batches: on the timer, on size, at stop") {
  std::string path = tempPath("access.log");
  std::atomic<uint64_t> dropped{0};
  AccessLogOptions options;
  options.destination = path;
  auto sink = AccessLogSink::open(options, dropped);
  REQUIRE(sink);
  boost::asio::io_context io;
  auto count_lines = [&] {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    return std::count(text.begin(), text.end(), '\n');
  };
  {
    AccessLogWriter writer(io, **sink);
    writer.write(upstreamEntry());
    CHECK(count_lines() == 0);  // buffered
    // The flush timer hands it over; the sink's thread writes it.
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (count_lines() == 0 && std::chrono::steady_clock::now() < deadline) {
      io.run_for(20ms);
      io.restart();
    }
    CHECK(count_lines() == 1);
    // Past kFlushBytes a batch goes at once, without the timer.
    size_t line_bytes = line(upstreamEntry()).size();
    size_t n = AccessLogSink::kFlushBytes / line_bytes + 2;
    for (size_t i = 0; i < n; ++i) writer.write(upstreamEntry());
    deadline = std::chrono::steady_clock::now() + 5s;
    while (count_lines() < 1 + static_cast<long>(AccessLogSink::kFlushBytes / line_bytes) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(5ms);
    CHECK(count_lines() >= 1 + static_cast<long>(AccessLogSink::kFlushBytes / line_bytes));
    CHECK(count_lines() < static_cast<long>(1 + n));  // the rest still buffered
  }
  // The writer's destructor handed over the rest; stop() writes everything queued.
  sink.value()->stop();
  CHECK(dropped.load() == 0);
  (*sink).reset();
  std::ifstream in(path);
  std::string text_line;
  long lines = 0;
  while (std::getline(in, text_line)) {
    CHECK(json::parse(text_line)["stickyroute"] == "web");
    ++lines;
  }
  CHECK(lines ==
        static_cast<long>(1 + AccessLogSink::kFlushBytes / line(upstreamEntry()).size() + 2));
}

TEST_CASE(
    "access log - a destination that does not read: the worker never blocks, lines are "
    "dropped and counted, the rest arrives") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::atomic<uint64_t> dropped{0};
  AccessLogOptions options;
  options.destination = "/dev/fd/" + std::to_string(fds[1]);
  auto sink = AccessLogSink::open(options, dropped);
  REQUIRE(sink);
  close(fds[1]);  // the sink has its own descriptor of the pipe
  boost::asio::io_context io;
  size_t written = 0;
  {
    AccessLogWriter writer(io, **sink);
    // Far more than the pipe, the sink's queue and the worker's buffer hold together.
    size_t total = (AccessLogSink::kMaxQueuedBytes + AccessLogSink::kMaxBufferedBytes) * 2 /
                   line(upstreamEntry()).size();
    for (size_t i = 0; i < total; ++i) writer.write(upstreamEntry());
    written = total;
    CHECK(dropped.load() > 0);
  }
  // Now read it all: the sink writes what it kept, and closes its end at stop().
  long lines = 0;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) lines += std::count(buf, buf + n, '\n');
  });
  sink.value()->stop();
  reader.join();
  close(fds[0]);
  CHECK(lines > 0);
  CHECK(static_cast<uint64_t>(lines) + dropped.load() == written);
}

TEST_CASE("access log - an unwritable destination is a startup error that says so") {
  std::atomic<uint64_t> dropped{0};
  AccessLogOptions options;
  options.destination = "/nonexistent-dir/access.log";
  auto sink = AccessLogSink::open(options, dropped);
  REQUIRE(!sink);
  CHECK(sink.error().message.find("cannot open the access log /nonexistent-dir/access.log") !=
        std::string::npos);
}

}  // namespace
}  // namespace sticky::proxy
