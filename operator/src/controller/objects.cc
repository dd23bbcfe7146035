#include "controller/objects.h"

namespace sticky::op {
namespace {

using nlohmann::json;

const json* field(const json& obj, std::string_view key) {
  return presentField(obj, key);
}

std::string stringAt(const json& obj, std::string_view key) {
  const json* f = field(obj, key);
  return f && f->is_string() ? f->get<std::string>() : std::string();
}

const json& objectAt(const json& obj, std::string_view key) {
  static const json kEmpty = json::object();
  const json* f = field(obj, key);
  return f && f->is_object() ? *f : kEmpty;
}

const json& arrayAt(const json& obj, std::string_view key) {
  static const json kEmpty = json::array();
  const json* f = field(obj, key);
  return f && f->is_array() ? *f : kEmpty;
}

ObjectMeta decodeMeta(const json& object) {
  const json& meta = objectAt(object, "metadata");
  ObjectMeta out;
  out.ns = stringAt(meta, "namespace");
  out.name = stringAt(meta, "name");
  out.uid = stringAt(meta, "uid");
  if (const json* g = field(meta, "generation"); g && g->is_number_integer()) {
    out.generation = g->get<int64_t>();
  }
  out.creation_timestamp = stringAt(meta, "creationTimestamp");
  out.deleting = field(meta, "deletionTimestamp") != nullptr;
  for (const auto& [k, v] : objectAt(meta, "labels").items()) {
    if (v.is_string()) out.labels.emplace(k, v.get<std::string>());
  }
  return out;
}

/// The status of the condition of `type` ("True", "False", "Unknown"), or empty.
std::string conditionStatus(const json& status, std::string_view type) {
  std::string found;
  for (const auto& c : arrayAt(status, "conditions")) {
    if (stringAt(c, "type") == type) found = stringAt(c, "status");
  }
  return found;
}

}  // namespace

const json* presentField(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

StickyRoute decodeStickyRoute(const json& object) {
  StickyRoute out;
  out.metadata = decodeMeta(object);
  if (const json* spec = field(object, "spec")) out.spec = *spec;
  out.accepted_in_status = conditionStatus(objectAt(object, "status"), "Accepted") == "True";
  return out;
}

Pod decodePod(const json& object) {
  Pod out;
  out.metadata = decodeMeta(object);
  const json& status = objectAt(object, "status");
  out.phase = stringAt(status, "phase");
  out.reason = stringAt(status, "reason");
  out.pod_ip = stringAt(status, "podIP");
  if (std::string ready = conditionStatus(status, "Ready"); !ready.empty()) {
    out.ready = ready == "True";
  }
  for (const auto& c : arrayAt(objectAt(object, "spec"), "containers")) {
    for (const auto& p : arrayAt(c, "ports")) {
      ContainerPort port;
      port.name = stringAt(p, "name");
      if (const json* n = field(p, "containerPort"); n && n->is_number_integer()) {
        port.number = n->get<int64_t>();
      }
      out.ports.push_back(std::move(port));
    }
  }
  return out;
}

}  // namespace sticky::op
