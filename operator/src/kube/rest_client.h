#pragma once
// KubeApi over HTTP(S): JSON in, JSON out, errors by value. The only code in the project that
// sees cpprestsdk is rest_client.cc; nothing here exposes it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "kube/kube_api.h"
#include "kube/kubeconfig.h"

namespace sticky::metrics {
class Exposition;
}

namespace sticky::op::kube {

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

/// The real API server over HTTP(S). Thread-safe: one client serves every watcher and the
/// reconciler concurrently.
class KubeClient final : public KubeApi {
 public:
  /// Fails (one sentence) on a malformed server URL or unusable CA / client certificate.
  static Result<std::shared_ptr<KubeClient>> create(ClusterConfig config,
                                                    KubeClientOptions options = {});
  ~KubeClient() override;
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  const ClusterConfig& config() const;

  /// `rest_client_requests_total{code,method,host}` as client-go counts it: every response by
  /// status code (a watch counts once, when its stream opens), "<error>" when none came.
  void renderMetrics(metrics::Exposition& x) const;

  Result<nlohmann::json, KubeError> get(const std::string& path) override;
  Result<nlohmann::json, KubeError> list(const std::string& path,
                                         const ListOptions& options = {}) override;
  Result<nlohmann::json, KubeError> create(const std::string& collection_path,
                                           const nlohmann::json& object) override;
  Result<nlohmann::json, KubeError> replace(const std::string& path, const nlohmann::json& object,
                                            const std::string& subresource = "") override;
  Result<nlohmann::json, KubeError> patch(const std::string& path, const nlohmann::json& body,
                                          PatchType type = PatchType::Merge,
                                          const std::string& subresource = "") override;
  Result<nlohmann::json, KubeError> remove(const std::string& path) override;
  Result<WatchEnd, KubeError> watch(const std::string& path, const WatchOptions& options,
                                    const std::function<void(const WatchEvent&)>& on_event,
                                    CancelToken& cancel) override;

  class Impl;

 private:
  explicit KubeClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sticky::op::kube
