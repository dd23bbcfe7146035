#pragma once
// Starts the watchers the operator needs (StickyRoutes and Pods, in all namespaces or in a given
// list of namespaces, one watcher per namespace then) and feeds them into one ObjectCache.

#include <memory>
#include <string>
#include <vector>

#include "kube/cache.h"
#include "kube/rest_client.h"
#include "kube/watcher.h"

namespace sticky::op::kube {

/// A watched resource type.
struct ResourceType {
  std::string kind;        ///< cache key, e.g. "Pod"
  std::string api_prefix;  ///< "/api/v1" or "/apis/<group>/<version>"
  std::string plural;      ///< "pods"
};

inline const ResourceType kStickyRouteResource{"StickyRoute", "/apis/kubesticky.io/v1alpha1",
                                               "stickyroutes"};
inline const ResourceType kPodResource{"Pod", "/api/v1", "pods"};

struct InformerOptions {
  std::vector<ResourceType> resources{kStickyRouteResource, kPodResource};
  std::vector<std::string> namespaces;  ///< empty = all namespaces (one cluster-wide watch)
  int watch_timeout_seconds = 300;
  BackoffPolicy backoff;
  /// Optional diagnostics sink for watch errors; default stderr.
  std::function<void(const std::string& message)> report_error;
};

class Informer {
 public:
  Informer(std::shared_ptr<KubeClient> client, std::shared_ptr<ObjectCache> cache,
           InformerOptions options = {});
  ~Informer();  ///< stops the watchers
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void start();
  void stop();

  ObjectCache& cache() { return *cache_; }
  bool synced() const { return cache_->synced(); }
  /// The watchers, in (resource, namespace) order; for tests and diagnostics.
  const std::vector<std::unique_ptr<Watcher>>& watchers() const { return watchers_; }

 private:
  std::shared_ptr<KubeClient> client_;
  std::shared_ptr<ObjectCache> cache_;
  InformerOptions options_;
  std::vector<std::unique_ptr<Watcher>> watchers_;
};

}  // namespace sticky::op::kube
