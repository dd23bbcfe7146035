#pragma once
// The framing of a watch response body: one JSON object per line, {"type": "ADDED", "object":
// {...}}. Bytes go in as the transport hands them over (any split, even mid-character); events
// come out one complete line at a time. Pure: rest_client.cc feeds it from cpprestsdk's stream,
// the unit tests and fuzz/watch_stream_fuzz.cc from strings.
//
//   WatchStreamDecoder d;
//   d.append("{\"type\":\"ADDED\",\"object\":{}}\n{\"ty");
//   d.next()    -> an ADDED event
//   d.next()    -> nullopt (the second line is not complete)
//   d.append("pe\":\"BOOKMARK\",\"object\":{}}");
//   d.finish()  -> the BOOKMARK event (a last line without "\n" still counts)
//
// Blank lines are skipped; a "\r" or spaces before the "\n" are ignored. A line that is not a
// watch event (not JSON, no string "type", an unknown type), or longer than kMaxWatchLineBytes
// (complete or not: memory stays bounded whatever the server sends), is an error: the stream
// cannot be trusted after it, and the watcher backs off and watches again.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kube/kube_api.h"

namespace sticky::op::kube {

/// The longest watch event line taken: far over any object the API server stores (etcd refuses
/// requests over 1.5 MiB by default; a pod's annotations are capped at 256 KiB).
inline constexpr size_t kMaxWatchLineBytes = 16 * 1024 * 1024;

/// One line of a watch stream (without its "\n"): the event, nullopt for a blank line, or what
/// is wrong with it in one sentence (Error).
Result<std::optional<WatchEvent>> decodeWatchLine(std::string_view line);

class WatchStreamDecoder {
 public:
  /// Buffers `bytes` (the next piece of the body).
  void append(std::string_view bytes);
  /// The event of the next complete line; nullopt when no complete non-blank line is buffered.
  Result<std::optional<WatchEvent>> next();
  /// At the end of the body: the event of a last line that has no "\n" (nullopt if there is
  /// none). Call after next() has returned nullopt.
  Result<std::optional<WatchEvent>> finish();
  /// Bytes buffered and not yet decoded (an incomplete line).
  size_t buffered() const { return pending_.size() - start_; }

 private:
  Result<std::optional<WatchEvent>> lineTooLong();

  std::string pending_;
  size_t start_ = 0;  // where the first undecoded line starts in pending_
};

}  // namespace sticky::op::kube
