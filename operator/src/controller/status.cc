#include "controller/status.h"

#include <ctime>

namespace sticky::op {
namespace {

using nlohmann::json;

std::string_view stateName(EndpointState s) {
  return s == EndpointState::Active ? "Active" : "Draining";
}

std::string servedText(const RouteVerdict& v) {
  if (!v.served()) return "the route is not served";
  return "the proxy keeps serving generation " + std::to_string(*v.served_generation);
}

Condition readyCondition(const RouteVerdict& v, uint64_t desired_version,
                         const ProxyObservation& proxy) {
  Condition c{"Ready", "False", "", "", v.generation};
  using State = ProxyObservation::State;
  if (!v.accepted) {
    c.reason = reason::kNotAccepted;
    c.message = "generation " + std::to_string(v.generation) + " is not accepted (" +
                std::string(toString(v.reason)) + "); " + servedText(v);
    return c;
  }
  switch (proxy.state) {
    case State::NotObserved:
      c.status = "Unknown";
      c.reason = reason::kProxyPending;
      c.message = "waiting for the proxy to report the config it runs";
      return c;
    case State::Unreachable:
      c.reason = reason::kProxyUnavailable;
      c.message = "the proxy's admin socket does not answer: " + proxy.message;
      return c;
    case State::Rejected:
      c.reason = reason::kProxyRejectedConfig;
      c.message = "the proxy refused the config: " + proxy.message;
      return c;
    case State::Applied:
      break;
  }
  if (proxy.applied_version != desired_version) {
    c.status = "Unknown";
    c.reason = reason::kConfigPending;
    c.message = "the config with this generation is being pushed to the proxy";
    return c;
  }
  size_t active = v.activeEndpoints();
  if (active == 0) {
    c.reason = reason::kNoActiveEndpoints;
    c.message = v.endpoints.empty() ? "no ready pod matches the selector"
                                    : "every endpoint is draining; no new session can be placed";
    return c;
  }
  c.status = "True";
  c.reason = reason::kReady;
  c.message = "the proxy serves this generation with " + std::to_string(active) +
              (active == 1 ? " active endpoint" : " active endpoints");
  return c;
}

json statusOrEmpty(const json& previous) {
  return previous.is_object() ? previous : json::object();
}

}  // namespace

std::string formatTime(WallTime t) {
  std::time_t secs = WallClock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string formatMicroTime(WallTime t) {
  auto since = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
  auto secs = std::chrono::floor<std::chrono::seconds>(since);
  auto micros = (since - secs).count();
  std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[48];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string micro_text = std::to_string(micros);  // 0..999999
  return std::string(buf) + "." + std::string(6 - micro_text.size(), '0') + micro_text + "Z";
}

std::optional<WallTime> parseTime(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  auto digits = [&](size_t pos, size_t n) -> std::optional<int> {
    if (pos + n > text.size()) return std::nullopt;
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  auto year = digits(0, 4), month = digits(5, 2), day = digits(8, 2);
  auto hour = digits(11, 2), minute = digits(14, 2), second = digits(17, 2);
  if (!year || !month || !day || !hour || !minute || !second) return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 ||
      *second > 60) {
    return std::nullopt;
  }
  size_t pos = 19;
  std::chrono::microseconds fraction{0};
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int64_t scale = 100000;
    size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fraction += std::chrono::microseconds((text[pos] - '0') * scale);
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  if (pos >= text.size()) return std::nullopt;
  int offset_minutes = 0;
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
    if (!oh || !om || pos + 3 >= text.size() || text[pos + 3] != ':') return std::nullopt;
    offset_minutes = (*oh * 60 + *om) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *month - 1;
  tm.tm_mday = *day;
  tm.tm_hour = *hour;
  tm.tm_min = *minute;
  tm.tm_sec = *second;
  std::time_t secs = timegm(&tm);
  return WallClock::from_time_t(secs) - std::chrono::minutes(offset_minutes) +
         std::chrono::duration_cast<WallClock::duration>(fraction);
}

const json* findCondition(const json& status, std::string_view type) {
  if (!status.is_object()) return nullptr;
  auto it = status.find("conditions");
  if (it == status.end() || !it->is_array()) return nullptr;
  for (const auto& c : *it) {
    if (c.is_object() && c.value("type", "") == type) return &c;
  }
  return nullptr;
}

json setCondition(const json& conditions, const Condition& c, WallTime now) {
  // The CRD caps messages; a long error list is cut rather than the whole write refused.
  constexpr size_t kMaxMessage = 4096;
  std::string message = c.message;
  if (message.size() > kMaxMessage) {
    size_t cut = kMaxMessage - 3;
    while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
    message = message.substr(0, cut) + "...";
  }
  json out = json::array();
  std::string transition = formatTime(now);
  bool replaced = false;
  json entry = {{"type", c.type},
                {"status", c.status},
                {"reason", c.reason},
                {"message", message},
                {"observedGeneration", c.observed_generation}};
  if (conditions.is_array()) {
    for (const auto& existing : conditions) {
      if (!existing.is_object() || existing.value("type", "") != c.type) {
        out.push_back(existing);
        continue;
      }
      if (existing.value("status", "") == c.status && existing.contains("lastTransitionTime")) {
        transition = existing["lastTransitionTime"].get<std::string>();
      }
      entry["lastTransitionTime"] = transition;
      out.push_back(entry);
      replaced = true;
    }
  }
  if (!replaced) {
    entry["lastTransitionTime"] = transition;
    out.push_back(entry);
  }
  return out;
}

json computeStatus(const RouteVerdict& v, const json& previous, uint64_t desired_version,
                   const ProxyObservation& proxy, WallTime now) {
  json prev = statusOrEmpty(previous);
  json conditions = prev.contains("conditions") ? prev["conditions"] : json::array();
  Condition accepted{"Accepted", v.accepted ? "True" : "False", std::string(toString(v.reason)),
                     v.message, v.generation};
  conditions = setCondition(conditions, accepted, now);
  conditions = setCondition(conditions, readyCondition(v, desired_version, proxy), now);

  const RouteSessions* sessions = nullptr;
  if (auto it = proxy.sessions.find(v.key); it != proxy.sessions.end()) sessions = &it->second;
  json endpoints = json::array();
  for (const auto& e : v.endpoints) {
    uint64_t n = 0;
    if (sessions) {
      if (auto it = sessions->by_endpoint.find(e.name); it != sessions->by_endpoint.end()) {
        n = it->second;
      }
    }
    endpoints.push_back(
        {{"pod", e.name}, {"ip", e.address}, {"state", stateName(e.state)}, {"sessions", n}});
  }
  json out = json::object();
  out["observedGeneration"] = v.generation;
  out["conditions"] = std::move(conditions);
  out["readyEndpoints"] = v.activeEndpoints();
  out["drainingEndpoints"] = v.drainingEndpoints();
  out["sessions"] = sessions ? sessions->total : 0;
  out["endpoints"] = std::move(endpoints);
  return out;
}

json errorStatus(const json& previous, int64_t generation, const std::string& message,
                 WallTime now) {
  json out = statusOrEmpty(previous);
  json conditions = out.contains("conditions") ? out["conditions"] : json::array();
  std::string text = "reconcile failed: " + message;
  conditions = setCondition(
      conditions, {"Accepted", "False", std::string(reason::kReconcileError), text, generation},
      now);
  conditions = setCondition(
      conditions, {"Ready", "False", std::string(reason::kReconcileError), text, generation}, now);
  out["conditions"] = std::move(conditions);
  out["observedGeneration"] = generation;
  return out;
}

json withoutCounters(const json& status) {
  json out = statusOrEmpty(status);
  out.erase("sessions");
  if (auto it = out.find("endpoints"); it != out.end() && it->is_array()) {
    for (auto& e : *it) {
      if (e.is_object()) e.erase("sessions");
    }
  }
  return out;
}

bool statusWriteNeeded(const json& current, const json& desired,
                       std::optional<std::chrono::steady_clock::time_point> last_write,
                       std::chrono::steady_clock::time_point now,
                       std::chrono::steady_clock::duration counter_interval) {
  json cur = statusOrEmpty(current);
  json want = statusOrEmpty(desired);
  if (cur == want) return false;
  if (withoutCounters(cur) != withoutCounters(want)) return true;
  return !last_write || now - *last_write >= counter_interval;
}

}  // namespace sticky::op
