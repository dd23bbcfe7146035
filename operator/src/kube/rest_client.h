#pragma once
// A small Kubernetes REST client: JSON in, JSON out, errors by value. The only code in the
// project that sees cpprestsdk is rest_client.cc; nothing here exposes it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "kube/kubeconfig.h"

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

template <class T>
using KubeResult = Result<T, KubeError>;

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

struct KubeClientOptions {
  /// Timeout of ordinary (non-watch) requests.
  std::chrono::seconds request_timeout{30};
  /// How often a token_file's modification time is checked at most.
  std::chrono::seconds token_recheck{60};
  std::string user_agent = "sticky-operator";
};

/// Waits until the HTTP library has finished the asynchronous work it still had in hand after
/// the calls that started it returned (closing a cancelled watch's stream): until none is
/// pending and none has started for `quiet`, at most `limit`. A process calls it after every
/// client and watch has stopped, before it exits; false when work was still going at the limit.
bool waitForBackgroundWork(std::chrono::milliseconds quiet, std::chrono::milliseconds limit);

/// Thread-safe: one client serves every watcher and the reconciler concurrently. All paths are
/// absolute API paths like "/api/v1/namespaces/shop/pods" (query strings allowed).
class KubeClient {
 public:
  /// Fails (one sentence) on a malformed server URL or unusable CA / client certificate.
  static Result<std::shared_ptr<KubeClient>> create(ClusterConfig config,
                                                    KubeClientOptions options = {});
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  const ClusterConfig& config() const;

  KubeResult<nlohmann::json> get(const std::string& path);
  /// A whole collection (all pages), as {"items": [...], "metadata": {"resourceVersion": ...}}.
  KubeResult<nlohmann::json> list(const std::string& path, const ListOptions& options = {});
  /// POST to the collection path; returns the created object.
  KubeResult<nlohmann::json> create(const std::string& collection_path,
                                    const nlohmann::json& object);
  /// PUT the whole object (metadata.resourceVersion in `object` gives optimistic concurrency).
  /// `subresource` e.g. "status" appends "/status" to the object path.
  KubeResult<nlohmann::json> replace(const std::string& path, const nlohmann::json& object,
                                     const std::string& subresource = "");
  KubeResult<nlohmann::json> patch(const std::string& path, const nlohmann::json& body,
                                   PatchType type = PatchType::Merge,
                                   const std::string& subresource = "");
  /// DELETE; returns what the server returned (the object or a Status).
  KubeResult<nlohmann::json> remove(const std::string& path);

  /// Streams a watch on a collection path: calls on_event for each event as it arrives (on the
  /// calling thread), returns when the server ends the stream, when `cancel` fires, or on error
  /// (HTTP status != 200, transport error, undecodable line). Does not throw.
  KubeResult<WatchEnd> watch(const std::string& path, const WatchOptions& options,
                             const std::function<void(const WatchEvent&)>& on_event,
                             CancelToken& cancel);

  class Impl;

 private:
  explicit KubeClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// "/api/v1" + "pods" + ns -> "/api/v1/namespaces/ns/pods" (ns empty = all namespaces).
std::string collectionPath(const std::string& group_version_prefix, const std::string& plural,
                           const std::string& ns);
/// collectionPath(...) + "/" + name.
std::string objectPath(const std::string& group_version_prefix, const std::string& plural,
                       const std::string& ns, const std::string& name);
/// Percent-encodes a query parameter value.
std::string urlEncode(const std::string& value);

}  // namespace sticky::op::kube
