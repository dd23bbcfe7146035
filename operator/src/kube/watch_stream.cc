#include "kube/watch_stream.h"

namespace sticky::op::kube {

namespace {

using nlohmann::json;

std::optional<WatchEventType> parseEventType(const std::string& s) {
  if (s == "ADDED") return WatchEventType::Added;
  if (s == "MODIFIED") return WatchEventType::Modified;
  if (s == "DELETED") return WatchEventType::Deleted;
  if (s == "BOOKMARK") return WatchEventType::Bookmark;
  if (s == "ERROR") return WatchEventType::Error;
  return std::nullopt;
}

}  // namespace

Result<std::optional<WatchEvent>> decodeWatchLine(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty()) return std::optional<WatchEvent>();
  json doc = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("type") || !doc["type"].is_string()) {
    return fail("the stream carried a line that is not a watch event: " +
                std::string(line.substr(0, 200)));
  }
  const auto& type_name = doc["type"].get_ref<const std::string&>();
  auto type = parseEventType(type_name);
  if (!type) return fail("unknown watch event type " + type_name.substr(0, 200));
  WatchEvent event;
  event.type = *type;
  if (doc.contains("object")) event.object = std::move(doc["object"]);
  return std::optional<WatchEvent>(std::move(event));
}

void WatchStreamDecoder::append(std::string_view bytes) {
  if (start_ > 0 && start_ >= pending_.size() / 2) {
    pending_.erase(0, start_);
    start_ = 0;
  }
  pending_.append(bytes);
}

Result<std::optional<WatchEvent>> WatchStreamDecoder::next() {
  for (size_t nl; (nl = pending_.find('\n', start_)) != std::string::npos;) {
    if (nl - start_ > kMaxWatchLineBytes) return lineTooLong();
    std::string_view line = std::string_view(pending_).substr(start_, nl - start_);
    start_ = nl + 1;
    auto event = decodeWatchLine(line);
    if (!event || event->has_value()) return event;
  }
  if (buffered() > kMaxWatchLineBytes) return lineTooLong();
  return std::optional<WatchEvent>();
}

Result<std::optional<WatchEvent>> WatchStreamDecoder::lineTooLong() {
  pending_.clear();  // the stream is not read any further: give the memory back
  start_ = 0;
  return fail("a watch event line over " + std::to_string(kMaxWatchLineBytes / (1024 * 1024)) +
              " MiB: the stream is not read further");
}

Result<std::optional<WatchEvent>> WatchStreamDecoder::finish() {
  if (buffered() > kMaxWatchLineBytes) return lineTooLong();
  std::string_view rest = std::string_view(pending_).substr(start_);
  start_ = pending_.size();
  return decodeWatchLine(rest);
}

}  // namespace sticky::op::kube
