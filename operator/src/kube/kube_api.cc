#include "kube/kube_api.h"

#include <cctype>

namespace sticky::op::kube {

// ---------------------------------------------------------------------------------------------
// CancelToken

void CancelToken::cancel() {
  std::vector<std::pair<std::uint64_t, std::function<void()>>> callbacks;
  {
    std::lock_guard lock(mutex_);
    if (cancelled_) return;
    cancelled_ = true;
    callbacks.swap(callbacks_);
  }
  for (auto& [id, fn] : callbacks) fn();
}

bool CancelToken::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

std::uint64_t CancelToken::onCancel(std::function<void()> fn) {
  std::unique_lock lock(mutex_);
  const std::uint64_t id = next_id_++;
  if (cancelled_) {
    lock.unlock();
    fn();
    return id;
  }
  callbacks_.emplace_back(id, std::move(fn));
  return id;
}

void CancelToken::unregister(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  std::erase_if(callbacks_, [id](const auto& entry) { return entry.first == id; });
}

// ---------------------------------------------------------------------------------------------
// Helpers

const char* watchEventTypeName(WatchEventType type) {
  switch (type) {
    case WatchEventType::Added:
      return "ADDED";
    case WatchEventType::Modified:
      return "MODIFIED";
    case WatchEventType::Deleted:
      return "DELETED";
    case WatchEventType::Bookmark:
      return "BOOKMARK";
    case WatchEventType::Error:
      return "ERROR";
  }
  return "UNKNOWN";
}

std::string collectionPath(const std::string& group_version_prefix, const std::string& plural,
                           const std::string& ns) {
  std::string path = group_version_prefix;
  if (!ns.empty()) path += "/namespaces/" + ns;
  return path + "/" + plural;
}

std::string objectPath(const std::string& group_version_prefix, const std::string& plural,
                       const std::string& ns, const std::string& name) {
  return collectionPath(group_version_prefix, plural, ns) + "/" + name;
}

std::string urlEncode(const std::string& value) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(char(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// ResourceType

std::string ResourceType::apiVersion() const {
  return group.empty() ? version : group + "/" + version;
}

std::string ResourceType::apiPrefix() const {
  return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
}

std::string ResourceType::collectionPath(const std::string& ns) const {
  return kube::collectionPath(apiPrefix(), plural, ns);
}

std::string ResourceType::objectPath(const std::string& ns, const std::string& name) const {
  return kube::objectPath(apiPrefix(), plural, ns, name);
}

}  // namespace sticky::op::kube
