#pragma once
// A real Kubernetes control plane for integration tests: etcd + kube-apiserver 1.20 started by
// test/env/kube-apiserver.sh. There is no scheduler, controller-manager or kubelet, so pods are
// stored but never run: createReadyPod() writes the status a kubelet would (Running, Ready, podIP)
// and points the pod at an address of the test's choosing (127.0.0.2, ... reach this machine).
//
// One cluster per test binary: KubeCluster::shared() starts it on first use and stops it at exit
// (a watchdog also stops it if the binary dies). With STICKY_KUBE_ENV_DIR set to a directory,
// shared() attaches to the cluster running there (starting one if none is, and leaving it
// running): ctest sets it so that one cluster serves the whole run (test/CMakeLists.txt), and it
// speeds up iterating by hand (stop it with `test/env/kube-apiserver.sh stop DIR`). Tests share
// the cluster, concurrently under ctest, so each test works in namespaces of its own and never
// restarts the shared API server (ownCluster() is for that).

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.h"

namespace sticky::test {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;

  bool ok() const { return exit_code == 0; }
  std::string describe() const;  // "exit 1: <stderr>" for failure messages
};

/// Runs `argv` (argv[0] is a path) with `input` on stdin; captures stdout and stderr.
CommandResult runCommand(const std::vector<std::string>& argv, const std::string& input = {});

struct ContainerPort {
  std::string name;  // may be empty (an unnamed port)
  int port = 0;
};

class KubeCluster {
 public:
  /// The node name that createReadyPod() puts in spec.nodeName (a Node object the script creates).
  static constexpr const char* kNodeName = "sticky-node";
  static constexpr const char* kKubectl = "/usr/bin/kubectl";

  /// The process-wide cluster: started lazily on first call, stopped at exit. Throws
  /// std::runtime_error (with the start script's output and the server's log) if it does not
  /// come up.
  static KubeCluster& shared();
  /// A cluster of this process's own, never the shared one (STICKY_KUBE_ENV_DIR is ignored):
  /// for tests that restart the API server, which would break every other test's watches.
  /// Started lazily on first call, stopped at exit.
  static KubeCluster& ownCluster();

  /// Starts a new cluster in a fresh temporary directory (stopped and removed by the destructor),
  /// or, with `reuse_dir`, attaches to the cluster running there (starting one if none is, and
  /// leaving it running afterwards).
  explicit KubeCluster(std::optional<std::string> reuse_dir = std::nullopt);
  ~KubeCluster();
  KubeCluster(const KubeCluster&) = delete;
  KubeCluster& operator=(const KubeCluster&) = delete;

  const std::string& dir() const { return dir_; }
  std::string kubeconfigPath() const { return dir_ + "/kubeconfig"; }
  std::string caFile() const { return dir_ + "/pki/ca.crt"; }
  std::string serverUrl() const { return "https://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::string& token() const { return token_; }
  /// kube-apiserver's log (all its runs, restarts included).
  std::string apiServerLog() const;

  /// Runs kubectl (1.32 client) against this cluster: `kubectl --kubeconfig ... <args>`.
  CommandResult kubectl(const std::vector<std::string>& args, const std::string& input = {}) const;
  /// kubectl that must succeed: returns stdout, throws std::runtime_error with stderr otherwise.
  std::string kubectlOrThrow(const std::vector<std::string>& args,
                             const std::string& input = {}) const;
  /// `kubectl apply -f -` (in `ns` if given); throws with kubectl's error if it fails.
  std::string applyYaml(const std::string& yaml, const std::string& ns = {}) const;

  /// Stops kube-apiserver and starts it again on the same port against the same etcd; returns
  /// once it is ready again. Watches break, data stays.
  void restartApiServer();

  /// Creates the namespace (no error if it exists).
  void createNamespace(const std::string& ns) const;
  /// Creates a pod bound to kNodeName with one container exposing `ports`, then sets its status
  /// as a kubelet would: phase Running, podIP `ip`, conditions Ready and ContainersReady True.
  void createReadyPod(const std::string& ns, const std::string& name,
                      const std::map<std::string, std::string>& labels, const std::string& ip,
                      const std::vector<ContainerPort>& ports) const;
  /// Flips the pod's Ready (and ContainersReady) condition; the pod stays Running.
  void setPodReady(const std::string& ns, const std::string& name, bool ready) const;
  /// Without `force` the pod only gets a deletionTimestamp and stays Terminating (no kubelet
  /// confirms), like a pod draining in a rolling update; with `force` it is gone at once.
  void deletePod(const std::string& ns, const std::string& name, bool force) const;

 private:
  void start();
  void stop() noexcept;
  void loadState();
  std::string scriptPath() const;
  void runScript(const std::vector<std::string>& args, const std::string& what);

  std::unique_ptr<TempDir> temp_dir_;
  std::string dir_;
  bool owned_ = false;  // stop the cluster on destruction
  int port_ = 0;
  std::string token_;
};

}  // namespace sticky::test
