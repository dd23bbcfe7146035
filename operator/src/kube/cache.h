#pragma once
// A thread-safe store of Kubernetes objects by kind / namespace / name, fed by watchers, read by
// the reconciler through immutable snapshots.

#include <chrono>
#include <compare>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sticky::op::kube {

struct ObjectKey {
  std::string namespace_;  ///< empty for cluster-scoped objects
  std::string name;
  auto operator<=>(const ObjectKey&) const = default;
  bool operator==(const ObjectKey&) const = default;
};

/// metadata.namespace / metadata.name of an object (empty strings when missing).
ObjectKey keyOf(const nlohmann::json& object);

using ObjectPtr = std::shared_ptr<const nlohmann::json>;
using ObjectMap = std::map<ObjectKey, ObjectPtr>;

/// An immutable view of the cache at one moment. Safe to read from any thread, for as long as
/// the caller holds it.
class CacheSnapshot {
 public:
  CacheSnapshot(std::map<std::string, ObjectMap> kinds, std::uint64_t version, bool synced);

  /// All objects of `kind` ("StickyRoute", "Pod"), ordered by namespace then name.
  const ObjectMap& objects(const std::string& kind) const;
  /// Objects of `kind` in namespace `ns`, ordered by name.
  std::vector<ObjectPtr> inNamespace(const std::string& kind, const std::string& ns) const;
  /// nullptr when absent.
  ObjectPtr find(const std::string& kind, const std::string& ns, const std::string& name) const;

  /// Increases with every change to the cache.
  std::uint64_t version() const { return version_; }
  /// True once at least one source is registered and every registered source has delivered its
  /// first full list. A reconciler must not
  /// act on an unsynced cache (it would see pods missing that merely have not been listed yet).
  bool synced() const { return synced_; }

 private:
  std::map<std::string, ObjectMap> kinds_;
  std::uint64_t version_ = 0;
  bool synced_ = false;
};

enum class CacheChangeType { Added, Modified, Deleted };

struct CacheChange {
  std::string kind;
  ObjectKey key;
  CacheChangeType type;
};

class ObjectCache {
 public:
  using Listener = std::function<void(const std::vector<CacheChange>& changes)>;

  /// Declares a source (one watcher): kind + namespace scope ("" = all namespaces). The cache is
  /// synced when every declared source has called replaceAll at least once.
  void registerSource(const std::string& kind, const std::string& scope_namespace);

  /// Replaces every object of `kind` within `scope_namespace` ("" = all namespaces) by `items`
  /// (a JSON array), atomically: objects gone are deleted, new ones added, changed ones modified.
  void replaceAll(const std::string& kind, const std::string& scope_namespace,
                  const nlohmann::json& items, const std::string& resource_version);
  /// Adds or replaces one object.
  void upsert(const std::string& kind, const nlohmann::json& object);
  /// Removes one object (no-op if absent).
  void remove(const std::string& kind, const ObjectKey& key);

  std::shared_ptr<const CacheSnapshot> snapshot() const;
  std::uint64_t version() const;
  bool synced() const;
  /// resourceVersion given to the last replaceAll of that source ("" if none yet).
  std::string listedResourceVersion(const std::string& kind,
                                    const std::string& scope_namespace) const;

  /// Blocks until version() > `seen_version`, the deadline passes, or shutdown(); returns the
  /// current version. Reconcilers use it to wake up and then coalesce a burst.
  std::uint64_t waitForChange(std::uint64_t seen_version,
                              std::chrono::steady_clock::time_point deadline) const;
  /// Wakes every waitForChange() for good.
  void shutdown();

  /// Called after each change (outside the lock, on the writer's thread) with what changed.
  /// Changes that leave an object byte-for-byte equal are not reported and do not bump version.
  void setListener(Listener listener);

 private:
  void commit(std::vector<CacheChange> changes, std::unique_lock<std::mutex>& lock);
  bool syncedLocked() const;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<std::string, ObjectMap> kinds_;
  std::map<std::pair<std::string, std::string>, std::string> sources_;  // -> listed rv
  std::set<std::pair<std::string, std::string>> listed_;
  std::uint64_t version_ = 0;
  bool shutdown_ = false;
  mutable std::shared_ptr<const CacheSnapshot> snapshot_;  // built lazily, reused until a change
  Listener listener_;
};

}  // namespace sticky::op::kube
