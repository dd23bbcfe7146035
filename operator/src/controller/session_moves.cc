#include "controller/session_moves.h"

#include <algorithm>
#include <set>

namespace sticky::op {
namespace {

// At most this many pods are named in one event's message; the rest are counted.
constexpr size_t kMaxPodsNamed = 10;

// An endpoint's identity: the proxy treats another IP or port under the same name as another
// endpoint (its sessions are lost), and the state (Active, Draining) does not matter.
bool sameEndpoint(const EndpointConfig& a, const EndpointConfig& b) {
  return a.name == b.name && a.address == b.address && a.port == b.port;
}

std::string sessionsText(uint64_t n) {
  return std::to_string(n) + (n == 1 ? " session" : " sessions");
}

}  // namespace

std::string whyEndpointLeft(const EndpointConfig& endpoint, const RouteVerdict& route,
                            const std::vector<Pod>& pods) {
  auto pod = std::find_if(pods.begin(), pods.end(), [&](const Pod& p) {
    return p.metadata.ns == route.ns && p.metadata.name == endpoint.name;
  });
  if (pod == pods.end()) return "deleted";
  if (pod->phase == "Failed" && pod->reason == "Evicted") return "evicted";
  if (pod->phase == "Failed" || pod->phase == "Succeeded") return "phase " + pod->phase;
  if (pod->pod_ip.empty()) return "no pod IP";
  for (const auto& e : route.endpoints) {
    if (e.name == endpoint.name) {
      return e.address != endpoint.address ? "pod IP changed" : "port changed";
    }
  }
  return "no longer selected";
}

EventSpec sessionsLeftEvent(const std::vector<SessionsLeft>& left, OnEndpointLost policy) {
  uint64_t total = 0;
  for (const auto& l : left) total += l.sessions;
  std::string pods;
  if (left.size() == 1) {
    pods = "pod " + left[0].pod + " (" + left[0].why + ")";
  } else {
    pods = std::to_string(left.size()) + " pods: ";
    for (size_t i = 0; i < left.size() && i < kMaxPodsNamed; ++i) {
      if (i > 0) pods += ", ";
      pods += left[i].pod + " (" + std::to_string(left[i].sessions) + ", " + left[i].why + ")";
    }
    if (left.size() > kMaxPodsNamed) {
      pods += " and " + std::to_string(left.size() - kMaxPodsNamed) + " more";
    }
  }
  if (policy == OnEndpointLost::Reject) {
    return {"Warning", std::string(reason::kSessionsDropped),
            sessionsText(total) + " on " + pods +
                " are dropped: each client gets one 503 and starts a new session "
                "(onEndpointLost: Reject)"};
  }
  return {"Normal", std::string(reason::kSessionsMoved),
          sessionsText(total) + " will move off " + pods};
}

void SessionMoveTracker::observe(const DesiredState& desired, const ProxyObservation& proxy,
                                 const std::vector<Pod>& pods) {
  std::set<std::string> present;
  for (const auto& v : desired.routes) {
    if (!v.served()) continue;  // left out of the config: the proxy has no table for it
    present.insert(v.key);
    RouteState& state = routes_[v.key];
    if (state.uid != v.uid) {  // new, or deleted and created again
      state = RouteState();
      state.uid = v.uid;
    }
    const auto& routes = desired.config.routes;
    auto config = std::find_if(routes.begin(), routes.end(),
                               [&](const RouteConfig& r) { return r.name == v.key; });
    if (config != routes.end()) state.policy = config->on_endpoint_lost;
    const RouteSessions* observed = nullptr;
    if (proxy.state == ProxyObservation::State::Applied) {
      if (auto it = proxy.sessions.find(v.key); it != proxy.sessions.end()) {
        observed = &it->second;
      }
    }
    // What the proxy says an endpoint of the previous pass has: the proxy has not been pushed
    // this pass's config yet, so a name still means the previous pass's endpoint.
    auto observedSessions = [&](const std::string& name) -> std::optional<uint64_t> {
      if (!observed) return std::nullopt;
      auto it = observed->by_endpoint.find(name);
      if (it == observed->by_endpoint.end()) return std::nullopt;
      return it->second;
    };

    std::vector<Endpoint> next;
    for (const auto& e : v.endpoints) {
      Endpoint entry{e, 0};
      auto before = std::find_if(state.endpoints.begin(), state.endpoints.end(),
                                 [&](const Endpoint& old) { return old.config.name == e.name; });
      bool same = before != state.endpoints.end() && sameEndpoint(before->config, e);
      bool replaced = before != state.endpoints.end() && !same;  // same pod name, new IP or port
      if (!replaced)
        entry.sessions = observedSessions(e.name).value_or(same ? before->sessions : 0);
      next.push_back(std::move(entry));
    }
    for (const auto& old : state.endpoints) {
      bool stays =
          std::any_of(v.endpoints.begin(), v.endpoints.end(),
                      [&](const EndpointConfig& e) { return sameEndpoint(e, old.config); });
      if (stays) continue;
      uint64_t sessions = observedSessions(old.config.name).value_or(old.sessions);
      if (sessions == 0) continue;
      SessionsLeft& left = state.left[old.config.name];
      left.pod = old.config.name;
      left.sessions += sessions;
      left.why = whyEndpointLeft(old.config, v, pods);
    }
    state.endpoints = std::move(next);
  }
  std::erase_if(routes_, [&](const auto& kv) { return present.count(kv.first) == 0; });
}

std::vector<std::pair<std::string, EventSpec>> SessionMoveTracker::takeDue(Clock::time_point now) {
  std::vector<std::pair<std::string, EventSpec>> out;
  for (auto& [key, state] : routes_) {
    if (state.left.empty()) continue;
    if (state.last_event && now - *state.last_event < interval_) continue;
    std::vector<SessionsLeft> left;
    for (auto& [pod, l] : state.left) left.push_back(std::move(l));
    out.emplace_back(key, sessionsLeftEvent(left, state.policy));
    state.left.clear();
    state.last_event = now;
  }
  return out;
}

}  // namespace sticky::op
