#pragma once
// Starts the watchers the operator needs (StickyRoutes and Pods, in all namespaces or in a given
// list of namespaces, one watcher per namespace then) and feeds them into one ObjectCache.

#include <memory>
#include <string>
#include <vector>

#include "kube/cache.h"
#include "kube/kube_api.h"
#include "kube/watcher.h"

namespace sticky::metrics {
class Exposition;
}

namespace sticky::op::kube {

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
  /// `api` must outlive the informer.
  Informer(KubeApi& api, std::shared_ptr<ObjectCache> cache, InformerOptions options = {});
  ~Informer();  ///< stops the watchers
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void start();
  void stop();

  ObjectCache& cache() { return *cache_; }
  bool synced() const { return cache_->synced(); }
  /// The watchers, in (resource, namespace) order; for tests and diagnostics.
  const std::vector<std::unique_ptr<Watcher>>& watchers() const { return watchers_; }

  /// Per resource (plural, e.g. "pods"), summed over namespaces:
  /// `sticky_operator_watch_restarts_total` (watch requests after each watcher's first),
  /// `sticky_operator_relists_total` (lists after each watcher's first: 410 Gone, or a failure
  /// that needed a fresh list), `sticky_operator_watch_errors_total`.
  void renderMetrics(metrics::Exposition& x) const;

 private:
  KubeApi& api_;
  std::shared_ptr<ObjectCache> cache_;
  InformerOptions options_;
  std::vector<std::unique_ptr<Watcher>> watchers_;
  std::vector<std::string> watcher_resources_;  // the plural each watcher watches
};

}  // namespace sticky::op::kube
