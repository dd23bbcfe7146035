// The watch stream's framing without a server: events split at every byte, blank lines, CRLF,
// a last line without "\n", and the lines that are not watch events.
#include "kube/watch_stream.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace sticky::op::kube {
namespace {

const std::string kStream =
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n"
    "\r\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"caf\xc3\xa9\"}}}\r\n"
    "\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}}}";

// Every event of `stream` fed in pieces of `piece` bytes, then finish(); fails on an error.
std::vector<WatchEvent> decodeAll(std::string_view stream, size_t piece) {
  WatchStreamDecoder decoder;
  std::vector<WatchEvent> events;
  for (size_t at = 0; at < stream.size(); at += piece) {
    decoder.append(stream.substr(at, piece));
    while (true) {
      auto event = decoder.next();
      REQUIRE(event.ok());
      if (!event->has_value()) break;
      events.push_back(**event);
    }
  }
  auto last = decoder.finish();
  REQUIRE(last.ok());
  if (last->has_value()) events.push_back(**last);
  return events;
}

TEST_CASE("watch stream - the same events however the bytes are split") {
  for (size_t piece = 1; piece <= kStream.size(); ++piece) {
    INFO("piece size " << piece);
    auto events = decodeAll(kStream, piece);
    REQUIRE(events.size() == 3);
    CHECK(events[0].type == WatchEventType::Added);
    CHECK(events[0].object["metadata"]["name"] == "a");
    CHECK(events[1].type == WatchEventType::Modified);
    CHECK(events[1].object["metadata"]["name"] == "caf\xc3\xa9");
    CHECK(events[2].type == WatchEventType::Bookmark);
    CHECK(events[2].object["metadata"]["resourceVersion"] == "7");
  }
}

TEST_CASE("watch stream - an incomplete line waits for its newline") {
  WatchStreamDecoder decoder;
  decoder.append("{\"type\":\"DELETED\",\"obj");
  auto none = decoder.next();
  REQUIRE(none.ok());
  CHECK(!none->has_value());
  CHECK(decoder.buffered() == 22);
  decoder.append("ect\":{}}\n");
  auto event = decoder.next();
  REQUIRE(event.ok());
  REQUIRE(event->has_value());
  CHECK((*event)->type == WatchEventType::Deleted);
  CHECK(decoder.buffered() == 0);
  auto end = decoder.finish();
  REQUIRE(end.ok());
  CHECK(!end->has_value());
}

TEST_CASE("watch stream - an event without an object has a null object") {
  auto event = decodeWatchLine("{\"type\":\"ERROR\"}  ");
  REQUIRE(event.ok());
  REQUIRE(event->has_value());
  CHECK((*event)->type == WatchEventType::Error);
  CHECK((*event)->object.is_null());
}

TEST_CASE("watch stream - lines that are not watch events are errors") {
  for (std::string line : {"not json", "[1,2]", "{\"type\":7}", "{\"object\":{}}",
                           "{\"type\":\"ADDED\"", "{\"type\":\"ADDED\"}{\"type\":\"ADDED\"}"}) {
    INFO(line);
    auto event = decodeWatchLine(line);
    REQUIRE(!event.ok());
    CHECK(event.error().message.find("not a watch event") != std::string::npos);
  }
  auto unknown = decodeWatchLine("{\"type\":\"RENAMED\",\"object\":{}}");
  REQUIRE(!unknown.ok());
  CHECK(unknown.error().message == "unknown watch event type RENAMED");

  WatchStreamDecoder decoder;
  decoder.append("{\"type\":\"ADDED\",\"object\":{}}\ngarbage\n");
  auto first = decoder.next();
  REQUIRE(first.ok());
  CHECK(first->has_value());
  CHECK(!decoder.next().ok());
}

TEST_CASE(
    "watch stream - a line over the limit is an error, complete or not, and its memory goes") {
  const std::string head = "{\"type\":\"ADDED\",\"object\":{\"x\":\"";
  const std::string tail = "\"}}";
  std::string at_limit =
      head + std::string(kMaxWatchLineBytes - head.size() - tail.size(), 'a') + tail;
  REQUIRE(at_limit.size() == kMaxWatchLineBytes);
  WatchStreamDecoder fits;
  fits.append(at_limit + "\n");
  auto event = fits.next();
  REQUIRE(event.ok());
  CHECK(event->has_value());

  std::string over = at_limit;
  over.insert(head.size(), "a");
  WatchStreamDecoder whole;
  whole.append(over + "\n");
  auto refused = whole.next();
  REQUIRE(!refused.ok());
  CHECK(refused.error().message ==
        "a watch event line over 16 MiB: the stream is not read further");
  CHECK(whole.buffered() == 0);

  WatchStreamDecoder endless;  // no line end ever comes: refused once past the limit
  const std::string mib(1024 * 1024, 'x');
  Result<std::optional<WatchEvent>> step = std::optional<WatchEvent>();
  int appended = 0;
  while (step.ok() && appended < 20) {
    endless.append(mib);
    ++appended;
    step = endless.next();
  }
  REQUIRE(!step.ok());
  CHECK(appended == 17);
  CHECK(endless.buffered() == 0);
}

}  // namespace
}  // namespace sticky::op::kube
