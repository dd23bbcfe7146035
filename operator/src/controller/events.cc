#include "controller/events.h"

#include <cstdio>

#include "kube/kube_api.h"

namespace sticky::op {
namespace {

using nlohmann::json;

std::string text(const json* condition, const char* key) {
  if (!condition) return {};
  return condition->value(key, "");
}

bool isProxyReason(const std::string& reason) {
  return reason == reason::kProxyUnavailable || reason == reason::kProxyRejectedConfig;
}

std::string eventName(const std::string& object_name, WallTime now) {
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(nanos));
  return object_name + "." + buf;
}

}  // namespace

ObjectReference ObjectReference::of(const json& object) {
  ObjectReference r;
  r.api_version = object.value("apiVersion", "");
  r.kind = object.value("kind", "");
  if (auto it = object.find("metadata"); it != object.end() && it->is_object()) {
    r.ns = it->value("namespace", "");
    r.name = it->value("name", "");
    r.uid = it->value("uid", "");
    r.resource_version = it->value("resourceVersion", "");
  }
  return r;
}

std::vector<EventSpec> transitionEvents(const json& previous_status, const json& next_status) {
  std::vector<EventSpec> out;
  const json* prev_acc = findCondition(previous_status, "Accepted");
  const json* next_acc = findCondition(next_status, "Accepted");
  std::string pa = text(prev_acc, "status"), na = text(next_acc, "status");
  if (na == "True" && pa != "True") {
    out.push_back({"Normal", "Accepted", text(next_acc, "message")});
  } else if (na == "False" &&
             (pa != "False" || text(prev_acc, "reason") != text(next_acc, "reason") ||
              text(prev_acc, "message") != text(next_acc, "message"))) {
    out.push_back({"Warning", text(next_acc, "reason"), text(next_acc, "message")});
  }
  const json* prev_ready = findCondition(previous_status, "Ready");
  const json* next_ready = findCondition(next_status, "Ready");
  std::string pr = text(prev_ready, "status"), nr = text(next_ready, "status");
  std::string reason = text(next_ready, "reason");
  if (nr == "True" && pr != "True") {
    out.push_back({"Normal", "Ready", text(next_ready, "message")});
  } else if (pr == "True" && nr == "False" && reason != reason::kNotAccepted &&
             reason != reason::kReconcileError && !isProxyReason(reason)) {
    // The reasons left here (NoActiveEndpoints) mean clients get 503 until a pod is Ready.
    out.push_back({"Warning", reason, text(next_ready, "message")});
  }
  return out;
}

json makeEvent(const ObjectReference& about, const EventSpec& event, const std::string& name,
               int64_t count, WallTime first, WallTime last, const std::string& component,
               const std::string& instance) {
  json involved = {{"apiVersion", about.api_version},
                   {"kind", about.kind},
                   {"namespace", about.ns},
                   {"name", about.name},
                   {"uid", about.uid}};
  if (!about.resource_version.empty()) involved["resourceVersion"] = about.resource_version;
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", name}, {"namespace", about.ns}}},
          {"involvedObject", std::move(involved)},
          {"type", event.type},
          {"reason", event.reason},
          {"message", event.message},
          {"count", count},
          {"firstTimestamp", formatTime(first)},
          {"lastTimestamp", formatTime(last)},
          {"source", {{"component", component}, {"host", instance}}},
          {"reportingComponent", component},
          {"reportingInstance", instance}};
}

EventRecorder::EventRecorder(kube::KubeApi& api, std::string component, std::string instance,
                             Clock clock)
    : api_(api),
      component_(std::move(component)),
      instance_(std::move(instance)),
      clock_(std::move(clock)) {}

Result<bool> EventRecorder::record(const ObjectReference& about, const EventSpec& event) {
  std::lock_guard lock(mutex_);
  WallTime now = clock_();
  // Forget old entries so the map stays small; an event older than an hour starts afresh.
  std::erase_if(seen_,
                [&](const auto& kv) { return now - kv.second.last_write > std::chrono::hours(1); });
  Key key{about.uid, event.type, event.reason, event.message};
  std::string events = kube::kEventResource.collectionPath(about.ns);
  auto it = seen_.find(key);
  if (it != seen_.end()) {
    Seen& s = it->second;
    s.unwritten += 1;
    if (now - s.last_write < min_repeat_interval_) return false;
    json patch = {{"count", s.count + s.unwritten}, {"lastTimestamp", formatTime(now)}};
    auto r = api_.patch(events + "/" + s.name, patch);
    if (r) {
      s.count += s.unwritten;
      s.unwritten = 0;
      s.last_write = now;
      return true;
    }
    if (!r.error().notFound()) return fail(r.error().message);
    seen_.erase(it);  // expired on the server: create a new one below
  }
  Seen s;
  s.name = eventName(about.name, now);
  s.count = 1;
  s.first = now;
  s.last_write = now;
  auto r = api_.create(events, makeEvent(about, event, s.name, 1, now, now, component_, instance_));
  if (!r) return fail(r.error().message);
  seen_[key] = s;
  return true;
}

}  // namespace sticky::op
