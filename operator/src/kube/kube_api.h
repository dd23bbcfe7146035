#pragma once
// The narrow interface to the Kubernetes API the operator needs: get, list, create, replace,
// patch, remove and a cancellable watch, JSON in and JSON out, errors by value. KubeClient
// (rest_client.h, over cpprestsdk) implements it for a real API server; the unit tests use an
// in-memory one (test/operator/kube/in_memory_kube_api.h). Watcher, Reconciler, LeaderElector
// and EventRecorder see only this.
//
// Also here: the resource types the operator reads and writes (one constant per kind, the only
// place their group, version and plural are written) and their API paths.

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace sticky::op::kube {

/// A failed API call. http_status is 0 when no HTTP response arrived (connect, TLS, timeout).
struct KubeError {
  int http_status = 0;
  std::string reason;   ///< Kubernetes Status.reason ("NotFound", "Conflict", "Expired", ...)
  std::string message;  ///< one sentence: what was asked and what the server said
  /// The server's own words (Status.message, e.g. `stickyroutes.kubesticky.io "x" is invalid:
  /// spec.header: ...`), or the transport error; for conditions and Events.
  std::string status_message;

  bool notFound() const { return http_status == 404; }
  bool conflict() const { return http_status == 409; }
  /// 410 Gone / "too old resource version": the caller must list again.
  bool gone() const { return http_status == 410 || reason == "Expired" || reason == "Gone"; }
  bool transport() const { return http_status == 0; }
};

enum class PatchType {
  Merge,      ///< application/merge-patch+json
  Strategic,  ///< application/strategic-merge-patch+json (built-in kinds only, not CRDs)
  Json,       ///< application/json-patch+json (body is an array of operations)
};

enum class WatchEventType { Added, Modified, Deleted, Bookmark, Error };

/// "ADDED" etc., as on the wire.
const char* watchEventTypeName(WatchEventType type);

struct WatchEvent {
  WatchEventType type = WatchEventType::Added;
  /// The object (ADDED/MODIFIED/DELETED), an object carrying only metadata.resourceVersion
  /// (BOOKMARK), or a Kubernetes Status (ERROR; e.g. code 410 for an expired resourceVersion).
  nlohmann::json object;
};

/// Cancels a running watch() from another thread. Cheap to share; cancel() is idempotent and
/// callbacks registered after cancellation run immediately.
class CancelToken {
 public:
  void cancel();
  bool cancelled() const;
  /// Registers `fn` to run once on cancel(); returns an id for unregister().
  std::uint64_t onCancel(std::function<void()> fn);
  void unregister(std::uint64_t id);

 private:
  mutable std::mutex mutex_;
  bool cancelled_ = false;
  std::uint64_t next_id_ = 1;
  std::vector<std::pair<std::uint64_t, std::function<void()>>> callbacks_;
};

struct ListOptions {
  std::string label_selector;  ///< e.g. "app=chat"; empty = everything
  std::string field_selector;
  int page_size = 500;  ///< limit per request; pages are followed with `continue`
};

struct WatchOptions {
  std::string resource_version;  ///< start after this version; empty = from "now" (no replay)
  bool allow_bookmarks = true;
  int timeout_seconds = 300;  ///< asked of the server; the client waits comfortably longer
  std::string label_selector;
  std::string field_selector;
};

/// How a watch() ended without error.
enum class WatchEnd { ServerClosed, Cancelled };

/// Thread-safe implementations: one serves every watcher and the reconciler concurrently. All
/// paths are absolute API paths like "/api/v1/namespaces/shop/pods" (query strings allowed).
class KubeApi {
 public:
  virtual ~KubeApi() = default;

  virtual Result<nlohmann::json, KubeError> get(const std::string& path) = 0;
  /// A whole collection (all pages), as {"items": [...], "metadata": {"resourceVersion": ...}}.
  virtual Result<nlohmann::json, KubeError> list(const std::string& path,
                                                 const ListOptions& options = {}) = 0;
  /// POST to the collection path; returns the created object.
  virtual Result<nlohmann::json, KubeError> create(const std::string& collection_path,
                                                   const nlohmann::json& object) = 0;
  /// PUT the whole object (metadata.resourceVersion in `object` gives optimistic concurrency:
  /// a stale one is 409 Conflict). `subresource` e.g. "status" appends "/status" to the path.
  virtual Result<nlohmann::json, KubeError> replace(const std::string& path,
                                                    const nlohmann::json& object,
                                                    const std::string& subresource = "") = 0;
  virtual Result<nlohmann::json, KubeError> patch(const std::string& path,
                                                  const nlohmann::json& body,
                                                  PatchType type = PatchType::Merge,
                                                  const std::string& subresource = "") = 0;
  /// DELETE; returns what the server returned (the object or a Status).
  virtual Result<nlohmann::json, KubeError> remove(const std::string& path) = 0;

  /// Streams a watch on a collection path: calls on_event for each event as it arrives (on the
  /// calling thread), returns when the server ends the stream, when `cancel` fires, or on error
  /// (HTTP status != 200, transport error, undecodable line). Does not throw.
  virtual Result<WatchEnd, KubeError> watch(const std::string& path, const WatchOptions& options,
                                            const std::function<void(const WatchEvent&)>& on_event,
                                            CancelToken& cancel) = 0;
};

/// "/api/v1" + "pods" + ns -> "/api/v1/namespaces/ns/pods" (ns empty = all namespaces).
std::string collectionPath(const std::string& group_version_prefix, const std::string& plural,
                           const std::string& ns);
/// collectionPath(...) + "/" + name.
std::string objectPath(const std::string& group_version_prefix, const std::string& plural,
                       const std::string& ns, const std::string& name);
/// Percent-encodes a query parameter value.
std::string urlEncode(const std::string& value);

/// A resource type the operator reads or writes. The one place each kind's group, version and
/// plural are written; informer, reconciler, status writer, leader election and events all
/// build their paths from these.
struct ResourceType {
  std::string group;    ///< "" for the core group
  std::string version;  ///< "v1", "v1alpha1"
  std::string plural;   ///< "pods"
  std::string kind;     ///< "Pod"; also the cache key

  /// "v1" or "kubesticky.io/v1alpha1", as in an object's apiVersion.
  std::string apiVersion() const;
  /// "/api/v1" or "/apis/kubesticky.io/v1alpha1".
  std::string apiPrefix() const;
  /// The collection in namespace `ns` ("" = all namespaces).
  std::string collectionPath(const std::string& ns) const;
  std::string objectPath(const std::string& ns, const std::string& name) const;
};

inline const ResourceType kStickyRouteResource{"kubesticky.io", "v1alpha1", "stickyroutes",
                                               "StickyRoute"};
inline const ResourceType kPodResource{"", "v1", "pods", "Pod"};
inline const ResourceType kLeaseResource{"coordination.k8s.io", "v1", "leases", "Lease"};
inline const ResourceType kEventResource{"", "v1", "events", "Event"};

}  // namespace sticky::op::kube
