#include "kube/informer.h"

#include <algorithm>
#include <map>

#include "metrics/exposition.h"

namespace sticky::op::kube {
namespace {

/// List items come without kind/apiVersion; watch events carry them. Store both alike so a
/// relist does not report every object as modified.
nlohmann::json normalized(nlohmann::json object, const ResourceType& resource) {
  if (object.is_object()) {
    object["kind"] = resource.kind;
    object["apiVersion"] = resource.apiVersion();
  }
  return object;
}

}  // namespace

Informer::Informer(KubeApi& api, std::shared_ptr<ObjectCache> cache, InformerOptions options)
    : api_(api), cache_(std::move(cache)), options_(std::move(options)) {
  std::vector<std::string> scopes = options_.namespaces;
  if (scopes.empty()) scopes.push_back("");
  for (const ResourceType& resource : options_.resources) {
    for (const std::string& ns : scopes) {
      cache_->registerSource(resource.kind, ns);
      WatcherOptions watcher_options;
      watcher_options.path = resource.collectionPath(ns);
      watcher_options.watch_timeout_seconds = options_.watch_timeout_seconds;
      watcher_options.backoff = options_.backoff;
      WatchSink sink;
      std::shared_ptr<ObjectCache> cache = cache_;
      sink.replace_all = [cache, resource, ns](const nlohmann::json& items, const std::string& rv) {
        nlohmann::json all = nlohmann::json::array();
        for (const auto& item : items) all.push_back(normalized(item, resource));
        cache->replaceAll(resource.kind, ns, all, rv);
      };
      sink.apply = [cache, resource](const WatchEvent& event) {
        if (event.type == WatchEventType::Deleted) {
          cache->remove(resource.kind, keyOf(event.object));
        } else if (event.type == WatchEventType::Added || event.type == WatchEventType::Modified) {
          cache->upsert(resource.kind, normalized(event.object, resource));
        }
      };
      sink.report_error = options_.report_error;
      watchers_.push_back(
          std::make_unique<Watcher>(api_, std::move(watcher_options), std::move(sink)));
      watcher_resources_.push_back(resource.plural);
    }
  }
}

Informer::~Informer() {
  stop();
}

void Informer::start() {
  for (auto& watcher : watchers_) watcher->start();
}

void Informer::stop() {
  for (auto& watcher : watchers_) watcher->stop();
}

void Informer::renderMetrics(metrics::Exposition& x) const {
  struct Counts {
    uint64_t restarts = 0, relists = 0, errors = 0;
  };
  std::map<std::string, Counts> by_resource;
  for (const ResourceType& resource : options_.resources) by_resource[resource.plural];
  for (size_t i = 0; i < watchers_.size(); ++i) {
    Counts& c = by_resource[watcher_resources_[i]];
    c.restarts += static_cast<uint64_t>(std::max(watchers_[i]->watchCount() - 1, 0));
    c.relists += static_cast<uint64_t>(std::max(watchers_[i]->listCount() - 1, 0));
    c.errors += static_cast<uint64_t>(watchers_[i]->errorCount());
  }
  struct Family {
    const char* name;
    const char* help;
    uint64_t Counts::*value;
  };
  const Family families[] = {
      {"sticky_operator_watch_restarts_total",
       "Watch requests made again after a stream ended (server timeout, error or relist).",
       &Counts::restarts},
      {"sticky_operator_relists_total",
       "Full lists after the first (410 Gone, or a failure that needed a fresh list).",
       &Counts::relists},
      {"sticky_operator_watch_errors_total",
       "Failed lists and watches, and ERROR events on a watch stream.", &Counts::errors},
  };
  for (const Family& f : families) {
    x.family(f.name, "counter", f.help);
    for (const auto& [resource, counts] : by_resource) {
      x.sample(f.name, {{"resource", resource}}, counts.*f.value);
    }
  }
}

}  // namespace sticky::op::kube
