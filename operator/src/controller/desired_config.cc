#include "controller/desired_config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

namespace sticky::op {
namespace {

using nlohmann::json;
using sticky::EndpointState;

Unexpected<SpecError> specError(RouteReason reason, std::string message) {
  return unexpected(SpecError{reason, std::move(message)});
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

const json* field(const json& obj, std::string_view key) {
  return presentField(obj, key);
}

// IANA_SVC_NAME as Kubernetes checks container port names: 1-15 chars of [a-z0-9-], at least
// one letter, no leading/trailing or double hyphen.
bool isPortName(std::string_view s) {
  if (s.empty() || s.size() > 15) return false;
  bool letter = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'a' && c <= 'z') {
      letter = true;
    } else if (c == '-') {
      if (i == 0 || i + 1 == s.size() || s[i - 1] == '-') return false;
    } else if (!(c >= '0' && c <= '9')) {
      return false;
    }
  }
  return letter;
}

template <class Enum, size_t N>
Result<Enum, SpecError> parseEnum(const json& spec, std::string_view key, Enum fallback,
                                  const std::array<Enum, N>& values) {
  const json* f = field(spec, key);
  if (!f) return fallback;
  std::string allowed;
  for (Enum v : values) {
    if (f->is_string() && f->get<std::string>() == toString(v)) return v;
    allowed += (allowed.empty() ? "" : ", ") + std::string(toString(v));
  }
  return specError(RouteReason::InvalidSpec, "spec." + std::string(key) + " must be one of " +
                                                 allowed + ", not " + f->dump());
}

// Two matches claim the same requests: same path prefix and a common host, or both any-host.
bool conflicts(const RouteMatch& a, const RouteMatch& b) {
  if (a.path_prefix != b.path_prefix) return false;
  if (a.hosts.empty() || b.hosts.empty()) return a.hosts.empty() && b.hosts.empty();
  for (const auto& h : a.hosts) {
    if (std::find(b.hosts.begin(), b.hosts.end(), h) != b.hosts.end()) return true;
  }
  return false;
}

std::string describeMatch(const RouteMatch& m) {
  std::string hosts;
  for (const auto& h : m.hosts) hosts += (hosts.empty() ? "" : ",") + h;
  return "hosts [" + (hosts.empty() ? std::string("*") : hosts) + "] pathPrefix " + m.path_prefix;
}

struct Endpoints {
  std::vector<EndpointConfig> list;  // sorted by pod name
  size_t selected = 0;               // pods that matched and could serve
  size_t missing_port = 0;           // of those, without the named port
  size_t bad_address = 0;            // of those, with a pod IP the proxy refuses
};

Endpoints computeEndpoints(const RouteSpec& spec,
                           const std::vector<const Pod*>& pods_in_namespace) {
  Endpoints out;
  for (const Pod* pod : pods_in_namespace) {
    PodPhase phase = podPhase(*pod);
    if (phase == PodPhase::Skip) continue;
    if (!spec.selector.matches(pod->metadata.labels)) continue;
    ++out.selected;
    auto port = resolvePort(*pod, spec.port);
    if (!port) {
      ++out.missing_port;
      continue;
    }
    EndpointConfig e;
    e.name = pod->metadata.name;
    e.address = pod->pod_ip;
    e.port = *port;
    e.state = phase == PodPhase::Active ? EndpointState::Active : EndpointState::Draining;
    // The proxy's own validation decides what an acceptable address is.
    if (!validateEndpoint(e, "endpoints[0]").empty()) {
      ++out.bad_address;
      continue;
    }
    out.list.push_back(std::move(e));
  }
  std::sort(out.list.begin(), out.list.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::string plural(size_t n, std::string_view word) {
  return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

std::string summary(const RouteVerdict& v, const Endpoints& eps) {
  std::string s = plural(v.activeEndpoints(), "active endpoint") + ", " +
                  plural(v.drainingEndpoints(), "draining endpoint");
  if (eps.missing_port > 0) {
    s += "; " + plural(eps.missing_port, "selected pod") + " without the named port skipped";
  }
  if (eps.bad_address > 0) {
    s += "; " + plural(eps.bad_address, "selected pod") + " with an unusable pod IP skipped";
  }
  return s;
}

struct Candidate {
  RouteVerdict verdict;
  std::string created;
  bool incumbent = false;  // served before (last good here, or Accepted=True in its status)
  std::optional<RouteSpec> current;   // the current spec, if it parsed
  std::optional<RouteSpec> fallback;  // last good spec for this uid
};

}  // namespace

std::string_view toString(RouteReason r) {
  switch (r) {
    case RouteReason::Accepted:
      return "Accepted";
    case RouteReason::InvalidSelector:
      return "InvalidSelector";
    case RouteReason::PortNotFound:
      return "PortNotFound";
    case RouteReason::InvalidSpec:
      return "InvalidSpec";
    case RouteReason::ConflictingMatch:
      return "ConflictingMatch";
  }
  return "Unknown";
}

size_t RouteVerdict::activeEndpoints() const {
  return std::count_if(endpoints.begin(), endpoints.end(),
                       [](const auto& e) { return e.state == EndpointState::Active; });
}

size_t RouteVerdict::drainingEndpoints() const {
  return std::count_if(endpoints.begin(), endpoints.end(),
                       [](const auto& e) { return e.state == EndpointState::Draining; });
}

const RouteVerdict* DesiredState::find(std::string_view key) const {
  for (const auto& r : routes) {
    if (r.key == key) return &r;
  }
  return nullptr;
}

Result<RouteSpec, SpecError> parseRouteSpec(const json& spec, const std::string& name) {
  if (!spec.is_object()) return specError(RouteReason::InvalidSpec, "spec must be an object");
  RouteSpec out;
  out.route.name = name;

  const json* selector = field(spec, "selector");
  if (!selector) return specError(RouteReason::InvalidSelector, "spec.selector is required");
  auto parsed_selector = Selector::fromJson(*selector);
  if (!parsed_selector) {
    return specError(RouteReason::InvalidSelector, "spec." + parsed_selector.error().message);
  }
  out.selector = std::move(*parsed_selector);

  const json* port = field(spec, "port");
  if (!port) return specError(RouteReason::InvalidSpec, "spec.port is required");
  if (port->is_number_integer()) {
    auto n = port->get<int64_t>();
    if (n < 1 || n > 65535) {
      return specError(RouteReason::InvalidSpec,
                       "spec.port must be between 1 and 65535, not " + std::to_string(n));
    }
    out.port.number = static_cast<uint16_t>(n);
  } else if (port->is_string()) {
    const auto& s = port->get_ref<const std::string&>();
    bool digits = !s.empty() &&
                  std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (digits && s.size() <= 5 && std::stoi(s) >= 1 && std::stoi(s) <= 65535) {
      out.port.number = static_cast<uint16_t>(std::stoi(s));
    } else if (isPortName(s)) {
      out.port.name = s;
    } else {
      return specError(RouteReason::InvalidSpec,
                       "spec.port must be a port number or a container port name (1-15 "
                       "lower-case letters, digits and '-'), not \"" +
                           s + "\"");
    }
  } else {
    return specError(RouteReason::InvalidSpec, "spec.port must be a number or a port name");
  }

  const json* header = field(spec, "header");
  if (!header || !header->is_string() || header->get_ref<const std::string&>().empty()) {
    return specError(RouteReason::InvalidSpec, "spec.header is required (e.g. client-id)");
  }
  if (!isHeaderToken(header->get<std::string>())) {
    return specError(RouteReason::InvalidSpec, "spec.header \"" + header->get<std::string>() +
                                                   "\" is not a valid HTTP header name");
  }
  out.route.header = lower(header->get<std::string>());

  if (const json* ttl = field(spec, "ttl")) {
    if (!ttl->is_string()) {
      return specError(RouteReason::InvalidSpec, "spec.ttl must be a duration such as 30m");
    }
    auto d = parseDuration(ttl->get<std::string>());
    if (!d) {
      return specError(RouteReason::InvalidSpec, "spec.ttl: " + d.error().message);
    }
    if (d->count() <= 0) {
      return specError(RouteReason::InvalidSpec, "spec.ttl must be greater than zero");
    }
    out.route.ttl = *d;
  }

  if (const json* max = field(spec, "maxSessions")) {
    if (!max->is_number_integer() || max->get<int64_t>() < 1) {
      return specError(RouteReason::InvalidSpec, "spec.maxSessions must be an integer >= 1");
    }
    out.route.max_sessions = max->get<uint64_t>();
  }

  using sticky::OnEndpointLost;
  using sticky::OnMissingKey;
  using sticky::Placement;
  auto placement = parseEnum(
      spec, "placement", Placement::LeastSessions,
      std::array{Placement::LeastSessions, Placement::ConsistentHash, Placement::RoundRobin});
  if (!placement) return unexpected(placement.error());
  out.route.placement = *placement;
  auto missing = parseEnum(spec, "onMissingKey", OnMissingKey::Balance,
                           std::array{OnMissingKey::Balance, OnMissingKey::Reject});
  if (!missing) return unexpected(missing.error());
  out.route.on_missing_key = *missing;
  auto lost = parseEnum(spec, "onEndpointLost", OnEndpointLost::Reassign,
                        std::array{OnEndpointLost::Reassign, OnEndpointLost::Reject});
  if (!lost) return unexpected(lost.error());
  out.route.on_endpoint_lost = *lost;

  if (const json* match = field(spec, "match")) {
    if (!match->is_object()) {
      return specError(RouteReason::InvalidSpec, "spec.match must be an object");
    }
    if (const json* hosts = field(*match, "hosts")) {
      if (!hosts->is_array()) {
        return specError(RouteReason::InvalidSpec, "spec.match.hosts must be a list of names");
      }
      std::set<std::string> unique;
      for (const auto& h : *hosts) {
        if (!h.is_string() || h.get_ref<const std::string&>().empty()) {
          return specError(RouteReason::InvalidSpec,
                           "spec.match.hosts must contain non-empty host names");
        }
        unique.insert(lower(h.get<std::string>()));
      }
      out.route.match.hosts.assign(unique.begin(), unique.end());
    }
    if (const json* prefix = field(*match, "pathPrefix")) {
      if (!prefix->is_string() || prefix->get_ref<const std::string&>().empty() ||
          prefix->get_ref<const std::string&>().front() != '/') {
        return specError(RouteReason::InvalidSpec,
                         "spec.match.pathPrefix must be a path starting with '/'");
      }
      out.route.match.path_prefix = prefix->get<std::string>();
    }
  }

  // Whatever the proxy itself would refuse (the one schema, the one validator).
  if (auto errors = validateRoute(out.route, "spec"); !errors.empty()) {
    return specError(RouteReason::InvalidSpec, describe(errors));
  }
  return out;
}

PodPhase podPhase(const Pod& pod) {
  if (pod.phase == "Succeeded" || pod.phase == "Failed") return PodPhase::Skip;
  if (pod.pod_ip.empty()) return PodPhase::Skip;
  if (pod.metadata.deleting) return PodPhase::Draining;
  if (pod.ready.value_or(false)) return PodPhase::Active;
  if (pod.phase == "Running") return PodPhase::Draining;
  return PodPhase::Skip;
}

std::optional<uint16_t> resolvePort(const Pod& pod, const PortRef& port) {
  if (port.number != 0) return port.number;
  for (const auto& p : pod.ports) {
    if (p.name == port.name && p.number >= 1 && p.number <= 65535) {
      return static_cast<uint16_t>(p.number);
    }
  }
  return std::nullopt;
}

DesiredState computeDesiredState(const ClusterSnapshot& snapshot, const LastGoodRoutes& previous,
                                 const ProxySettings& settings) {
  std::map<std::string, std::vector<const Pod*>, std::less<>> pods_by_namespace;
  for (const auto& pod : snapshot.pods) pods_by_namespace[pod.metadata.ns].push_back(&pod);
  for (auto& [ns, pods] : pods_by_namespace) {
    std::sort(pods.begin(), pods.end(),
              [](const Pod* a, const Pod* b) { return a->metadata.name < b->metadata.name; });
  }
  static const std::vector<const Pod*> kNoPods;
  auto podsIn = [&](const std::string& ns) -> const std::vector<const Pod*>& {
    auto it = pods_by_namespace.find(ns);
    return it == pods_by_namespace.end() ? kNoPods : it->second;
  };

  // 1. Each route on its own: parse the current spec, find its last good one.
  std::vector<Candidate> candidates;
  for (const auto& object : snapshot.routes) {
    const ObjectMeta& meta = object.metadata;
    Candidate c;
    c.verdict.ns = meta.ns;
    c.verdict.name = meta.name;
    if (c.verdict.name.empty()) continue;
    c.verdict.key = meta.key();
    c.verdict.uid = meta.uid;
    c.verdict.generation = meta.generation;
    c.created = meta.creation_timestamp;
    if (auto it = previous.find(c.verdict.key);
        it != previous.end() && it->second.uid == c.verdict.uid) {
      c.fallback = it->second.spec;
    }
    c.incumbent = c.fallback.has_value() || object.accepted_in_status;
    try {
      auto parsed = parseRouteSpec(object.spec, c.verdict.key);
      if (parsed) {
        c.current = std::move(*parsed);
        c.current->generation = c.verdict.generation;
      } else {
        c.verdict.reason = parsed.error().reason;
        c.verdict.message = parsed.error().message;
      }
    } catch (const std::exception& e) {
      c.verdict.reason = RouteReason::InvalidSpec;
      c.verdict.message = std::string("spec could not be read: ") + e.what();
    }
    candidates.push_back(std::move(c));
  }

  // 2. In creation order, so the older of two conflicting routes keeps its match. Timestamps
  // have whole seconds: within one second the route already served keeps it (a newcomer never
  // displaces it), then the name decides.
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.created != b.created) return a.created < b.created;
    if (a.incumbent != b.incumbent) return a.incumbent;
    return a.verdict.key < b.verdict.key;
  });

  DesiredState out;
  std::vector<std::pair<std::string, RouteMatch>> claimed;  // key, match
  auto conflictWith = [&](const RouteMatch& m) -> std::string {
    for (const auto& [key, other] : claimed) {
      if (conflicts(m, other)) return key;
    }
    return {};
  };
  for (auto& c : candidates) {
    RouteVerdict& v = c.verdict;
    std::optional<RouteSpec> serve;
    if (c.current) {
      Endpoints eps = computeEndpoints(*c.current, podsIn(v.ns));
      std::string rival = conflictWith(c.current->route.match);
      if (!rival.empty()) {
        v.reason = RouteReason::ConflictingMatch;
        v.message = "match (" + describeMatch(c.current->route.match) +
                    ") is already served by the older route " + rival;
      } else if (eps.selected > 0 && eps.missing_port == eps.selected) {
        v.reason = RouteReason::PortNotFound;
        v.message = "none of the " + plural(eps.selected, "selected pod") +
                    " has a container port named \"" + c.current->port.name + "\"";
      } else {
        v.accepted = true;
        v.reason = RouteReason::Accepted;
        v.endpoints = std::move(eps.list);
        v.served_generation = v.generation;
        v.message = summary(v, eps);
        out.last_good[v.key] = LastGoodRoute{v.uid, *c.current};
        serve = c.current;
      }
    }
    if (!v.accepted && c.fallback) {
      out.last_good[v.key] = LastGoodRoute{v.uid, *c.fallback};
      if (conflictWith(c.fallback->route.match).empty()) {
        Endpoints eps = computeEndpoints(*c.fallback, podsIn(v.ns));
        v.endpoints = std::move(eps.list);
        v.served_generation = c.fallback->generation;
        serve = c.fallback;
        v.message += "; still serving the last accepted spec (generation " +
                     std::to_string(c.fallback->generation) + ")";
      }
    }
    if (serve) claimed.emplace_back(v.key, serve->route.match);
  }

  // 3. Assemble in name order.
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.verdict.key < b.verdict.key; });
  out.config.listen = settings.listen;
  out.config.limits = settings.limits;
  out.config.headers = settings.headers;
  for (auto& c : candidates) {
    if (c.verdict.served()) {
      const RouteSpec& spec = c.verdict.accepted ? *c.current : *c.fallback;
      RouteConfig r = spec.route;
      r.endpoints = c.verdict.endpoints;
      out.config.routes.push_back(std::move(r));
    }
    out.routes.push_back(std::move(c.verdict));
  }

  // 4. Safety net: whatever the proxy would still refuse in the whole config (rules across
  // routes this function does not know about) takes the offending route out.
  for (size_t round = 0; round <= out.config.routes.size(); ++round) {
    auto errors = validate(out.config);
    if (errors.empty()) break;
    std::set<std::string> bad;
    for (const auto& e : errors) {
      if (e.path.rfind("routes[", 0) != 0) continue;
      size_t idx = 0;
      size_t pos = 7;
      while (pos < e.path.size() && e.path[pos] >= '0' && e.path[pos] <= '9') {
        idx = idx * 10 + static_cast<size_t>(e.path[pos++] - '0');
      }
      if (idx < out.config.routes.size()) bad.insert(out.config.routes[idx].name);
    }
    if (bad.empty()) break;  // not a route's fault (settings): the caller validates those
    for (auto& v : out.routes) {
      if (!bad.count(v.key)) continue;
      std::string message;
      for (const auto& e : errors) message += (message.empty() ? "" : "; ") + e.toString();
      v.accepted = false;
      v.reason = RouteReason::InvalidSpec;
      v.message = "the proxy would refuse this route: " + message;
      v.served_generation.reset();
      v.endpoints.clear();
      // Its spec did not make it into the config, so it is not a good one to fall back on.
      auto it = previous.find(v.key);
      if (it != previous.end() && it->second.uid == v.uid) {
        out.last_good[v.key] = it->second;
      } else {
        out.last_good.erase(v.key);
      }
    }
    std::erase_if(out.config.routes, [&](const auto& r) { return bad.count(r.name) > 0; });
  }

  out.config.version = configVersion(out.config);
  return out;
}

uint64_t configVersion(const ProxyConfig& config) {
  ProxyConfig copy = config;
  copy.version = 0;
  std::string text = toJsonString(copy);
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h == 0 ? 1 : h;
}

}  // namespace sticky::op
