#include "kube/informer.h"

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

}  // namespace sticky::op::kube
