// Fuzz target: the watch stream decoder (operator/src/kube/watch_stream.h: JSON lines from the
// API server, split however the transport delivers them), and the events it yields driven
// through the watcher's state machine (nextWatchStep) from Watching.
//
// Invariants:
//  - the events (and the error that ends the stream) do not depend on how the bytes are split;
//  - never more events than lines;
//  - events written back as lines decode to the same events;
//  - the watcher stays in a valid phase for every event: an ERROR event stops the stream; any
//    other event keeps it watching, resuming from the resourceVersion the event carried (or
//    the one before when it carried none), and no action carries an event of another kind.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_check.h"
#include "kube/watch_stream.h"
#include "kube/watcher.h"

namespace {

using sticky::op::kube::WatchEvent;
using sticky::op::kube::WatchEventType;
using sticky::op::kube::WatchStreamDecoder;

struct Decoded {
  std::vector<WatchEvent> events;
  std::string error;  // empty: the stream ended cleanly
};

Decoded decode(std::string_view stream, size_t piece) {
  WatchStreamDecoder decoder;
  Decoded out;
  for (size_t at = 0; at < stream.size(); at += piece) {
    decoder.append(stream.substr(at, piece));
    while (true) {
      auto event = decoder.next();
      if (!event) {
        out.error = event.error().message;
        FUZZ_CHECK(!out.error.empty(), "an error without a message");
        return out;
      }
      if (!event->has_value()) break;
      out.events.push_back(std::move(**event));
    }
  }
  auto last = decoder.finish();
  if (!last) {
    out.error = last.error().message;
  } else if (last->has_value()) {
    out.events.push_back(std::move(**last));
  }
  return out;
}

bool sameEvents(const std::vector<WatchEvent>& a, const std::vector<WatchEvent>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].type != b[i].type || a[i].object != b[i].object) return false;
  return true;
}

std::string asLines(const std::vector<WatchEvent>& events) {
  std::string out;
  for (const auto& e : events) {
    nlohmann::json line = {{"type", sticky::op::kube::watchEventTypeName(e.type)}};
    if (!e.object.is_null()) line["object"] = e.object;
    out += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
    out += '\n';
  }
  return out;
}

void checkWatcher(const std::vector<WatchEvent>& events) {
  namespace kube = sticky::op::kube;
  kube::WatchState state;
  state.phase = kube::WatchPhase::Watching;
  state.resource_version = "1";
  for (const auto& event : events) {
    kube::WatchStep step =
        kube::nextWatchStep(state, kube::EventReceived{event}, kube::BackoffPolicy{}, 0.5);
    if (event.type == WatchEventType::Error) {
      FUZZ_CHECK(step.state.phase != kube::WatchPhase::Watching, "an ERROR event kept watching");
      return;
    }
    FUZZ_CHECK(step.state.phase == kube::WatchPhase::Watching, "an event ended the watch");
    for (const auto& action : step.actions) {
      if (const auto* apply = std::get_if<kube::ApplyEventAction>(&action))
        FUZZ_CHECK(apply->event.type == event.type, "an action carries another event");
    }
    state = step.state;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view stream(reinterpret_cast<const char*>(data), size);
  Decoded whole = decode(stream, stream.size() + 1);
  Decoded split = decode(stream, 1 + size % 17);
  FUZZ_CHECK(whole.error == split.error, "split input ends otherwise: " + split.error);
  FUZZ_CHECK(sameEvents(whole.events, split.events), "split input gives other events");
  size_t lines = 1;
  for (char c : stream) lines += c == '\n';
  FUZZ_CHECK(whole.events.size() <= lines, "more events than lines");

  std::string written = asLines(whole.events);
  Decoded again = decode(written, written.size() + 1);
  FUZZ_CHECK(again.error.empty() && sameEvents(again.events, whole.events),
             "events written back decode otherwise: " + again.error);
  try {
    checkWatcher(whole.events);
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, std::string("an exception escaped nextWatchStep: ") + e.what());
  }
  return 0;
}
