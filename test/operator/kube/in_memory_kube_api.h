#pragma once
// An in-memory kube::KubeApi for unit tests: the parts of an API server the operator relies on,
// without a server.
//
//  - Objects live by API prefix + plural, namespace and name; every write takes the next
//    resourceVersion (one counter for everything, as etcd's revision). create sets uid,
//    generation 1 and creationTimestamp; a write that changes `spec` bumps generation.
//  - replace (PUT) with a metadata.resourceVersion other than the stored one is 409 Conflict
//    (optimistic concurrency, what leader election relies on); create of an existing name is 409
//    AlreadyExists; anything on a missing object is 404 NotFound.
//  - patch: merge patch (strategic treated as merge) or JSON patch; subresource "status" changes
//    only `status`, the main resource everything but `status`.
//  - list returns the items and the current resourceVersion; labelSelector "k=v,k2=v2" only.
//  - watch replays the events after the given resourceVersion (none when it is empty: "from
//    now"), then delivers new ones as they happen, until cancelled or closeWatches(). A
//    resourceVersion older than expireHistory() left is 410 Gone, as etcd compaction does.
//  - Injectable failures: failNext(operation, error) makes the next call of that operation
//    ("get", "list", "create", "replace", "patch", "remove", "watch") fail with `error`;
//    beforeWrite(hook) runs a hook before each write (outside the lock), e.g. to change the
//    object under a writer's feet.
// Thread-safe. Header-only: it is test support, linked into the unit tests alone.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube/kube_api.h"

namespace sticky::op::kube::test {

class InMemoryKubeApi final : public KubeApi {
 public:
  using json = nlohmann::json;

  static KubeError error(int status, std::string reason, std::string message) {
    KubeError e;
    e.http_status = status;
    e.reason = std::move(reason);
    e.message = message;
    e.status_message = std::move(message);
    return e;
  }
  static KubeError gone() { return error(410, "Expired", "too old resource version"); }
  static KubeError conflict() {
    return error(409, "Conflict",
                 "the object has been modified; please apply your changes to "
                 "the latest version and try again");
  }

  // ---- KubeApi ----------------------------------------------------------------------------

  Result<json, KubeError> get(const std::string& path) override {
    std::lock_guard lock(mutex_);
    ++calls_["get"];
    if (auto f = takeFailure("get")) return unexpected(*f);
    Path p = parse(path);
    auto it = objects_[p.type].find({p.ns, p.name});
    if (it == objects_[p.type].end()) return unexpected(notFound(p));
    return it->second;
  }

  Result<json, KubeError> list(const std::string& path, const ListOptions& options = {}) override {
    std::lock_guard lock(mutex_);
    ++calls_["list"];
    if (auto f = takeFailure("list")) return unexpected(*f);
    Path p = parse(path);
    json items = json::array();
    for (const auto& [key, object] : objects_[p.type]) {
      if (!p.ns.empty() && key.first != p.ns) continue;
      if (!matchesLabels(object, options.label_selector)) continue;
      items.push_back(object);
    }
    return json{{"items", std::move(items)},
                {"metadata", {{"resourceVersion", std::to_string(revision_)}}}};
  }

  Result<json, KubeError> create(const std::string& collection_path, const json& object) override {
    runHook("create", collection_path);
    std::lock_guard lock(mutex_);
    ++calls_["create"];
    if (auto f = takeFailure("create")) return unexpected(*f);
    Path p = parse(collection_path);
    json stored = object;
    json& meta = stored["metadata"];
    if (!p.ns.empty()) meta["namespace"] = p.ns;
    std::string name = meta.value("name", "");
    if (name.empty()) return unexpected(error(422, "Invalid", "metadata.name: Required value"));
    p.name = name;
    auto& objects = objects_[p.type];
    if (objects.count({p.ns, name})) {
      return unexpected(error(409, "AlreadyExists", p.plural + " \"" + name + "\" already exists"));
    }
    meta["uid"] = "uid-" + std::to_string(++uids_);
    meta["generation"] = 1;
    meta["creationTimestamp"] = "2026-11-21T10:00:00Z";
    meta["resourceVersion"] = std::to_string(++revision_);
    objects[{p.ns, name}] = stored;
    record(WatchEventType::Added, p, stored);
    return stored;
  }

  Result<json, KubeError> replace(const std::string& path, const json& object,
                                  const std::string& subresource = "") override {
    runHook("replace", path);
    std::lock_guard lock(mutex_);
    ++calls_["replace"];
    if (auto f = takeFailure("replace")) return unexpected(*f);
    Path p = parse(path);
    auto it = objects_[p.type].find({p.ns, p.name});
    if (it == objects_[p.type].end()) return unexpected(notFound(p));
    std::string rv;
    if (auto m = object.find("metadata"); m != object.end() && m->is_object()) {
      rv = m->value("resourceVersion", "");
    }
    if (!rv.empty() && rv != it->second["metadata"].value("resourceVersion", "")) {
      return unexpected(conflict());
    }
    json next = it->second;
    if (subresource == "status") {
      next["status"] = object.value("status", json());
    } else {
      for (const auto& [key, value] : object.items()) {
        if (key != "metadata" && key != "status") next[key] = value;
      }
      if (object.contains("metadata")) {
        for (const char* field : {"labels", "annotations"}) {
          if (object["metadata"].contains(field))
            next["metadata"][field] = object["metadata"][field];
        }
      }
    }
    return store(p, it->second, std::move(next));
  }

  Result<json, KubeError> patch(const std::string& path, const json& body,
                                PatchType type = PatchType::Merge,
                                const std::string& subresource = "") override {
    runHook("patch", path);
    std::lock_guard lock(mutex_);
    ++calls_["patch"];
    if (auto f = takeFailure("patch")) return unexpected(*f);
    Path p = parse(path);
    auto it = objects_[p.type].find({p.ns, p.name});
    if (it == objects_[p.type].end()) return unexpected(notFound(p));
    json patched = it->second;
    try {
      if (type == PatchType::Json) {
        patched = patched.patch(body);
      } else {
        patched.merge_patch(body);
      }
    } catch (const std::exception& e) {
      return unexpected(
          error(422, "Invalid", std::string("the patch does not apply: ") + e.what()));
    }
    json next = it->second;
    if (subresource == "status") {
      next["status"] = patched.value("status", json());
    } else {
      json status = next.value("status", json());
      next = patched;
      next["metadata"] = it->second["metadata"];
      if (patched.contains("metadata")) {
        for (const char* field : {"labels", "annotations", "deletionTimestamp"}) {
          if (patched["metadata"].contains(field)) {
            next["metadata"][field] = patched["metadata"][field];
          }
        }
      }
      if (status.is_null()) {
        next.erase("status");
      } else {
        next["status"] = status;
      }
    }
    return store(p, it->second, std::move(next));
  }

  Result<json, KubeError> remove(const std::string& path) override {
    runHook("remove", path);
    std::lock_guard lock(mutex_);
    ++calls_["remove"];
    if (auto f = takeFailure("remove")) return unexpected(*f);
    Path p = parse(path);
    auto it = objects_[p.type].find({p.ns, p.name});
    if (it == objects_[p.type].end()) return unexpected(notFound(p));
    json gone = it->second;
    objects_[p.type].erase(it);
    gone["metadata"]["resourceVersion"] = std::to_string(++revision_);
    record(WatchEventType::Deleted, p, gone);
    return gone;
  }

  Result<WatchEnd, KubeError> watch(const std::string& path, const WatchOptions& options,
                                    const std::function<void(const WatchEvent&)>& on_event,
                                    CancelToken& cancel) override {
    const std::uint64_t id = cancel.onCancel([this] {
      std::lock_guard lock(mutex_);
      changed_.notify_all();
    });
    struct Unregister {
      CancelToken& token;
      std::uint64_t id;
      ~Unregister() { token.unregister(id); }
    } unregister{cancel, id};

    std::unique_lock lock(mutex_);
    ++calls_["watch"];
    if (auto f = takeFailure("watch")) return unexpected(*f);
    Path p = parse(path);
    std::uint64_t from = revision_;
    if (!options.resource_version.empty()) {
      from = std::stoull(options.resource_version);
      if (from < compacted_) return unexpected(gone());
    }
    const std::uint64_t closes = closes_;
    ++open_watches_;
    changed_.notify_all();
    struct Close {
      InMemoryKubeApi& api;
      ~Close() {
        --api.open_watches_;
        api.changed_.notify_all();
      }
    } close{*this};
    while (true) {
      if (cancel.cancelled()) return WatchEnd::Cancelled;
      if (closes_ != closes) return WatchEnd::ServerClosed;
      const Recorded* next = nullptr;
      for (const auto& r : history_) {
        if (r.revision > from && r.type == p.type && (p.ns.empty() || r.ns == p.ns) &&
            matchesLabels(r.event.object, options.label_selector)) {
          next = &r;
          break;
        }
      }
      if (!next) {
        // Events past `from` that do not match still move it along.
        if (revision_ > from && !history_.empty() && history_.back().revision > from) {
          from = history_.back().revision;
          continue;
        }
        changed_.wait(lock);
        continue;
      }
      from = next->revision;
      WatchEvent event = next->event;
      lock.unlock();
      on_event(event);
      lock.lock();
    }
  }

  // ---- Test controls ------------------------------------------------------------------------

  /// The next call of `operation` fails with `error` (queued: several calls, several failures).
  void failNext(const std::string& operation, KubeError error) {
    std::lock_guard lock(mutex_);
    failures_[operation].push_back(std::move(error));
  }
  /// Runs before every create/replace/patch/remove with (operation, path); empty to clear.
  void beforeWrite(std::function<void(const std::string&, const std::string&)> hook) {
    std::lock_guard lock(mutex_);
    hook_ = std::move(hook);
  }
  /// Forgets the event history: a watch from any resourceVersion seen so far is 410 Gone (a
  /// list afterwards gives one that is not).
  void expireHistory() {
    std::lock_guard lock(mutex_);
    compacted_ = ++revision_;  // as if written elsewhere since: every version seen is older
    history_.clear();
  }
  /// Ends every open watch stream as a server does at timeoutSeconds.
  void closeWatches() {
    std::lock_guard lock(mutex_);
    ++closes_;
    changed_.notify_all();
  }
  /// Blocks until at least `n` watch streams are open, or `timeout`; whether they are.
  bool waitForWatches(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return open_watches_ >= n; });
  }
  /// How many times `operation` was called.
  int calls(const std::string& operation) const {
    std::lock_guard lock(mutex_);
    auto it = calls_.find(operation);
    return it == calls_.end() ? 0 : it->second;
  }
  std::string resourceVersion() const {
    std::lock_guard lock(mutex_);
    return std::to_string(revision_);
  }

 private:
  struct Path {
    std::string type;  // "/api/v1/pods"
    std::string plural;
    std::string ns;
    std::string name;
  };
  struct Recorded {
    std::uint64_t revision = 0;
    std::string type;
    std::string ns;
    WatchEvent event;
  };

  // "/api/v1[/namespaces/ns]/plural[/name[/subresource]]" or "/apis/group/version/...".
  static Path parse(std::string path) {
    path = path.substr(0, path.find('?'));
    std::vector<std::string> parts;
    size_t start = 1;
    while (start <= path.size()) {
      size_t slash = path.find('/', start);
      if (slash == std::string::npos) slash = path.size();
      if (slash > start) parts.push_back(path.substr(start, slash - start));
      start = slash + 1;
    }
    Path p;
    size_t i = parts.size() > 0 && parts[0] == "apis" ? 3 : 2;
    std::string prefix;
    for (size_t k = 0; k < i && k < parts.size(); ++k) prefix += "/" + parts[k];
    if (i + 2 < parts.size() && parts[i] == "namespaces") {
      p.ns = parts[i + 1];
      i += 2;
    }
    if (i < parts.size()) p.plural = parts[i];
    if (i + 1 < parts.size()) p.name = parts[i + 1];
    p.type = prefix + "/" + p.plural;
    return p;
  }

  static bool matchesLabels(const json& object, const std::string& selector) {
    if (selector.empty()) return true;
    json labels = object.contains("metadata") ? object["metadata"].value("labels", json::object())
                                              : json::object();
    size_t start = 0;
    while (start < selector.size()) {
      size_t comma = selector.find(',', start);
      if (comma == std::string::npos) comma = selector.size();
      std::string term = selector.substr(start, comma - start);
      size_t eq = term.find('=');
      std::string key = term.substr(0, eq);
      std::string value = eq == std::string::npos ? "" : term.substr(eq + 1);
      if (!labels.contains(key) || labels[key] != value) return false;
      start = comma + 1;
    }
    return true;
  }

  static KubeError notFound(const Path& p) {
    return error(404, "NotFound", p.plural + " \"" + p.name + "\" not found");
  }

  std::optional<KubeError> takeFailure(const std::string& operation) {
    auto it = failures_.find(operation);
    if (it == failures_.end() || it->second.empty()) return std::nullopt;
    KubeError e = std::move(it->second.front());
    it->second.pop_front();
    return e;
  }

  void runHook(const std::string& operation, const std::string& path) {
    std::function<void(const std::string&, const std::string&)> hook;
    {
      std::lock_guard lock(mutex_);
      if (in_hook_) return;
      hook = hook_;
      in_hook_ = static_cast<bool>(hook);
    }
    if (!hook) return;
    hook(operation, path);
    std::lock_guard lock(mutex_);
    in_hook_ = false;
  }

  // Stores `next` in place of `current` with a new resourceVersion (generation + 1 when the spec
  // changed) and records a MODIFIED event. Caller holds the lock.
  json store(const Path& p, json& current, json next) {
    if (next.value("spec", json()) != current.value("spec", json())) {
      next["metadata"]["generation"] = current["metadata"].value("generation", int64_t{0}) + 1;
    }
    next["metadata"]["resourceVersion"] = std::to_string(++revision_);
    current = next;
    record(WatchEventType::Modified, p, next);
    return next;
  }

  void record(WatchEventType type, const Path& p, const json& object) {
    history_.push_back(Recorded{revision_, p.type, p.ns, WatchEvent{type, object}});
    changed_.notify_all();
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::map<std::pair<std::string, std::string>, json>> objects_;
  std::vector<Recorded> history_;
  std::uint64_t revision_ = 1;
  std::uint64_t compacted_ = 0;
  std::uint64_t uids_ = 0;
  std::uint64_t closes_ = 0;
  int open_watches_ = 0;
  std::map<std::string, std::deque<KubeError>> failures_;
  std::map<std::string, int> calls_;
  std::function<void(const std::string&, const std::string&)> hook_;
  bool in_hook_ = false;
};

}  // namespace sticky::op::kube::test
