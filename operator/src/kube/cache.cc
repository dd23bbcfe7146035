#include "kube/cache.h"

namespace sticky::op::kube {

ObjectKey keyOf(const nlohmann::json& object) {
  ObjectKey key;
  if (!object.is_object()) return key;
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return key;
  if (auto ns = metadata->find("namespace"); ns != metadata->end() && ns->is_string()) {
    key.namespace_ = ns->get<std::string>();
  }
  if (auto name = metadata->find("name"); name != metadata->end() && name->is_string()) {
    key.name = name->get<std::string>();
  }
  return key;
}

// ---------------------------------------------------------------------------------------------
// CacheSnapshot

CacheSnapshot::CacheSnapshot(std::map<std::string, ObjectMap> kinds, std::uint64_t version,
                             bool synced)
    : kinds_(std::move(kinds)), version_(version), synced_(synced) {}

const ObjectMap& CacheSnapshot::objects(const std::string& kind) const {
  static const ObjectMap kEmpty;
  auto it = kinds_.find(kind);
  return it == kinds_.end() ? kEmpty : it->second;
}

std::vector<ObjectPtr> CacheSnapshot::inNamespace(const std::string& kind,
                                                  const std::string& ns) const {
  std::vector<ObjectPtr> out;
  const ObjectMap& all = objects(kind);
  for (auto it = all.lower_bound(ObjectKey{ns, ""}); it != all.end() && it->first.namespace_ == ns;
       ++it) {
    out.push_back(it->second);
  }
  return out;
}

ObjectPtr CacheSnapshot::find(const std::string& kind, const std::string& ns,
                              const std::string& name) const {
  const ObjectMap& all = objects(kind);
  auto it = all.find(ObjectKey{ns, name});
  return it == all.end() ? nullptr : it->second;
}

// ---------------------------------------------------------------------------------------------
// ObjectCache

void ObjectCache::registerSource(const std::string& kind, const std::string& scope_namespace) {
  std::unique_lock lock(mutex_);
  if (!sources_.emplace(std::pair(kind, scope_namespace), "").second) return;
  commit({}, lock);  // synced() may have changed
}

void ObjectCache::replaceAll(const std::string& kind, const std::string& scope_namespace,
                             const nlohmann::json& items, const std::string& resource_version) {
  std::unique_lock lock(mutex_);
  ObjectMap& objects = kinds_[kind];
  ObjectMap incoming;
  if (items.is_array()) {
    for (const auto& item : items) {
      ObjectKey key = keyOf(item);
      if (key.name.empty()) continue;
      if (!scope_namespace.empty() && key.namespace_ != scope_namespace) continue;
      incoming[key] = std::make_shared<const nlohmann::json>(item);
    }
  }
  std::vector<CacheChange> changes;
  for (auto it = objects.begin(); it != objects.end();) {
    const bool in_scope = scope_namespace.empty() || it->first.namespace_ == scope_namespace;
    if (in_scope && !incoming.count(it->first)) {
      changes.push_back({kind, it->first, CacheChangeType::Deleted});
      it = objects.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [key, object] : incoming) {
    auto existing = objects.find(key);
    if (existing == objects.end()) {
      changes.push_back({kind, key, CacheChangeType::Added});
      objects.emplace(key, std::move(object));
    } else if (*existing->second != *object) {
      changes.push_back({kind, key, CacheChangeType::Modified});
      existing->second = std::move(object);
    }
  }
  const auto source = std::pair(kind, scope_namespace);
  sources_[source] = resource_version;
  const bool first_list = listed_.insert(source).second;
  if (changes.empty() && !first_list) return;
  commit(std::move(changes), lock);
}

void ObjectCache::upsert(const std::string& kind, const nlohmann::json& object) {
  ObjectKey key = keyOf(object);
  if (key.name.empty()) return;
  std::unique_lock lock(mutex_);
  ObjectMap& objects = kinds_[kind];
  auto existing = objects.find(key);
  CacheChangeType type = CacheChangeType::Added;
  if (existing != objects.end()) {
    if (*existing->second == object) return;
    type = CacheChangeType::Modified;
    existing->second = std::make_shared<const nlohmann::json>(object);
  } else {
    objects.emplace(key, std::make_shared<const nlohmann::json>(object));
  }
  commit({{kind, std::move(key), type}}, lock);
}

void ObjectCache::remove(const std::string& kind, const ObjectKey& key) {
  std::unique_lock lock(mutex_);
  auto objects = kinds_.find(kind);
  if (objects == kinds_.end() || objects->second.erase(key) == 0) return;
  commit({{kind, key, CacheChangeType::Deleted}}, lock);
}

std::shared_ptr<const CacheSnapshot> ObjectCache::snapshot() const {
  std::lock_guard lock(mutex_);
  if (!snapshot_)
    snapshot_ = std::make_shared<const CacheSnapshot>(kinds_, version_, syncedLocked());
  return snapshot_;
}

std::uint64_t ObjectCache::version() const {
  std::lock_guard lock(mutex_);
  return version_;
}

bool ObjectCache::synced() const {
  std::lock_guard lock(mutex_);
  return syncedLocked();
}

std::string ObjectCache::listedResourceVersion(const std::string& kind,
                                               const std::string& scope_namespace) const {
  std::lock_guard lock(mutex_);
  auto it = sources_.find(std::pair(kind, scope_namespace));
  return it == sources_.end() ? "" : it->second;
}

std::uint64_t ObjectCache::waitForChange(std::uint64_t seen_version,
                                         std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(mutex_);
  changed_.wait_until(lock, deadline, [&] { return version_ > seen_version || shutdown_; });
  return version_;
}

void ObjectCache::shutdown() {
  {
    std::lock_guard lock(mutex_);
    shutdown_ = true;
  }
  changed_.notify_all();
}

void ObjectCache::setListener(Listener listener) {
  std::lock_guard lock(mutex_);
  listener_ = std::move(listener);
}

void ObjectCache::commit(std::vector<CacheChange> changes, std::unique_lock<std::mutex>& lock) {
  ++version_;
  snapshot_.reset();
  Listener listener = listener_;
  lock.unlock();
  changed_.notify_all();
  if (listener && !changes.empty()) listener(changes);
}

bool ObjectCache::syncedLocked() const {
  if (sources_.empty()) return false;
  for (const auto& [source, rv] : sources_) {
    if (!listed_.count(source)) return false;
  }
  return true;
}

}  // namespace sticky::op::kube
