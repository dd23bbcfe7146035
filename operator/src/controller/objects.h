#pragma once
// The two kinds the controller reads, as structs: a StickyRoute and a Pod, decoded once from the
// API server's JSON where the controller takes its snapshot of the cache (clusterSnapshotOf), so
// everything after that (desired config, endpoints, conflicts) reads fields, not JSON lookups.
//
// Decoding never fails: a field missing or of the wrong type decodes as absent (empty string,
// zero, no labels), which is what the API server's own defaulting leaves us to expect. The one
// part kept as JSON is a StickyRoute's spec: it is user input, and parseRouteSpec turns it into a
// RouteSpec with an error naming the field when it is wrong.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/selector.h"

namespace sticky::op {

/// The part of metadata the controller uses.
struct ObjectMeta {
  std::string ns;
  std::string name;
  std::string uid;
  int64_t generation = 0;
  std::string creation_timestamp;  // RFC 3339, whole seconds: compares as text
  bool deleting = false;           // deletionTimestamp is set
  Labels labels;                   // string values only

  /// "namespace/name", the key routes go by in the config and the logs.
  std::string key() const { return ns + "/" + name; }
};

struct StickyRoute {
  ObjectMeta metadata;
  nlohmann::json spec;              // null when absent; see parseRouteSpec
  bool accepted_in_status = false;  // status.conditions has Accepted=True
};

struct ContainerPort {
  std::string name;
  int64_t number = 0;  // as written; range-checked where it is used
};

struct Pod {
  ObjectMeta metadata;
  std::string phase;                 // status.phase
  std::string reason;                // status.reason ("Evicted" for a kubelet eviction)
  std::string pod_ip;                // status.podIP
  std::optional<bool> ready;         // the Ready condition; nullopt when not reported
  std::vector<ContainerPort> ports;  // every container's ports, in order
};

StickyRoute decodeStickyRoute(const nlohmann::json& object);
/// obj[key] when obj is an object and the field is there and not null; otherwise nullptr.
const nlohmann::json* presentField(const nlohmann::json& obj, std::string_view key);
Pod decodePod(const nlohmann::json& object);

}  // namespace sticky::op
