#include "support/kube_cluster.h"
#include "support/paths.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>

#include <nlohmann/json.hpp>

extern char** environ;

namespace sticky::test {
namespace {

using namespace std::chrono_literals;

// Starting may include building kube-apiserver from source when the cache is cold (~5-10 min on
// a busy 2-core machine); run `test/env/kube-apiserver.sh ensure` beforehand to keep tests fast.
constexpr auto kStartTimeout = std::chrono::minutes(30);
constexpr auto kRestartTimeout = std::chrono::minutes(5);
constexpr auto kStopTimeout = std::chrono::minutes(2);
constexpr const char* kScriptRelPath = "/test/env/kube-apiserver.sh";

std::string tail(const std::string& text, size_t max_chars) {
  return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

// Reads everything from the two pipes until both are closed.
void drain(int out_fd, int err_fd, std::string& out, std::string& err) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&out, &err};
  int open_count = 2;
  char buf[8192];
  while (open_count > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
}

bool pidAlive(const std::string& pid_file) {
  std::string text = readFile(pid_file);
  if (text.empty()) return false;
  int pid = std::atoi(text.c_str());
  return pid > 0 && ::kill(pid, 0) == 0;
}

nlohmann::json readyStatus(bool ready) {
  const char* value = ready ? "True" : "False";
  return {{"type", "Ready"}, {"status", value}};
}

}  // namespace

std::string CommandResult::describe() const {
  return "exit " + std::to_string(exit_code) + ": " + tail(err.empty() ? out : err, 4000);
}

CommandResult runCommand(const std::vector<std::string>& argv, const std::string& input) {
  if (argv.empty()) throw std::invalid_argument("runCommand needs a program to run");
  // stdin comes from a file so a program that does not read it can never block us.
  std::string input_path =
      (std::filesystem::temp_directory_path() / "sticky-stdin-XXXXXX").string();
  int input_fd = ::mkstemp(input_path.data());
  if (input_fd < 0) throw std::runtime_error("cannot create a temporary file for stdin");
  ::close(input_fd);
  writeFile(input_path, input);

  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw std::runtime_error("pipe failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, input_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<std::string> args_store = argv;
  std::vector<char*> args;
  for (auto& a : args_store) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  CommandResult result;
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ::unlink(input_path.c_str());
    result.exit_code = 127;
    result.err = "cannot start " + argv[0] + ": " + std::strerror(rc);
    return result;
  }
  drain(out_pipe[0], err_pipe[0], result.out, result.err);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::unlink(input_path.c_str());
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

KubeCluster& KubeCluster::shared() {
  static std::mutex mutex;
  static std::unique_ptr<KubeCluster> cluster;
  std::lock_guard<std::mutex> lock(mutex);
  if (!cluster) {
    const char* reuse = std::getenv("STICKY_KUBE_ENV_DIR");
    cluster = std::make_unique<KubeCluster>(reuse && *reuse ? std::optional<std::string>(reuse)
                                                            : std::nullopt);
  }
  return *cluster;
}

KubeCluster& KubeCluster::ownCluster() {
  static std::mutex mutex;
  static std::unique_ptr<KubeCluster> cluster;
  std::lock_guard<std::mutex> lock(mutex);
  if (!cluster) cluster = std::make_unique<KubeCluster>();
  return *cluster;
}

KubeCluster::KubeCluster(std::optional<std::string> reuse_dir) {
  if (reuse_dir) {
    std::filesystem::create_directories(*reuse_dir);
    dir_ = std::filesystem::canonical(*reuse_dir).string();
    if (pidAlive(dir_ + "/kube-apiserver.pid") && pidAlive(dir_ + "/etcd.pid")) {
      loadState();
      CommandResult ready = kubectl({"get", "--raw", "/readyz"});
      if (ready.ok()) return;
      throw std::runtime_error("the cluster in " + dir_ + " (STICKY_KUBE_ENV_DIR) is not ready (" +
                               ready.describe() + "); stop it with " + scriptPath() + " stop " +
                               dir_);
    }
    start();  // left running on purpose, for the next run to reuse
    return;
  }
  temp_dir_ = std::make_unique<TempDir>();
  dir_ = temp_dir_->path();
  owned_ = true;
  start();
}

KubeCluster::~KubeCluster() {
  if (owned_) stop();
}

std::string KubeCluster::scriptPath() const {
  return sticky::test::sourceDir() + kScriptRelPath;
}

void KubeCluster::runScript(const std::vector<std::string>& args, const std::string& what) {
  std::vector<std::string> argv = {"/bin/bash", scriptPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string log_path = dir_ + "/script.log";
  std::vector<std::string> env;
  if (owned_) env.push_back("STICKY_KUBE_OWNER_PID=" + std::to_string(::getpid()));
  Process script(argv, log_path, env);
  auto timeout = args.front() == "start" ? kStartTimeout : kRestartTimeout;
  int code = script.wait(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  if (code == 0) return;
  if (code == -1) script.stop();
  std::string message = what + " failed (" +
                        (code == -1 ? std::string("timed out") : "exit " + std::to_string(code)) +
                        ").\n--- " + log_path + " ---\n" + tail(readFile(log_path), 6000);
  std::string server_log = apiServerLog();
  if (!server_log.empty()) {
    message += "\n--- " + dir_ + "/kube-apiserver.log (tail) ---\n" + tail(server_log, 6000);
  }
  throw std::runtime_error(message);
}

void KubeCluster::start() {
  try {
    runScript({"start", dir_}, "starting etcd + kube-apiserver with " + scriptPath());
    loadState();
  } catch (...) {
    stop();  // the destructor will not run: leak no etcd or kube-apiserver
    throw;
  }
}

void KubeCluster::stop() noexcept {
  try {
    Process stop({"/bin/bash", scriptPath(), "stop", dir_}, dir_ + "/stop.log");
    stop.wait(kStopTimeout);
  } catch (const std::exception&) {
    // Nothing sensible to do; the watchdog still stops the cluster when this process exits.
  }
}

void KubeCluster::loadState() {
  port_ = std::atoi(readFile(dir_ + "/apiserver.port").c_str());
  token_ = readFile(dir_ + "/pki/admin.token");
  while (!token_.empty() && (token_.back() == '\n' || token_.back() == '\r')) token_.pop_back();
  if (port_ <= 0 || token_.empty()) {
    throw std::runtime_error("no cluster state (apiserver.port, pki/admin.token) in " + dir_);
  }
}

std::string KubeCluster::apiServerLog() const {
  return readFile(dir_ + "/kube-apiserver.log");
}

CommandResult KubeCluster::kubectl(const std::vector<std::string>& args,
                                   const std::string& input) const {
  std::vector<std::string> argv = {kKubectl, "--kubeconfig", kubeconfigPath(), "--cache-dir",
                                   dir_ + "/kubectl-cache"};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, input);
}

std::string KubeCluster::kubectlOrThrow(const std::vector<std::string>& args,
                                        const std::string& input) const {
  CommandResult r = kubectl(args, input);
  if (!r.ok()) {
    std::string cmd = "kubectl";
    for (const auto& a : args) cmd += " " + a;
    throw std::runtime_error(cmd + " failed, " + r.describe());
  }
  return r.out;
}

std::string KubeCluster::applyYaml(const std::string& yaml, const std::string& ns) const {
  std::vector<std::string> args = {"apply", "-f", "-"};
  if (!ns.empty()) args.insert(args.end(), {"--namespace", ns});
  return kubectlOrThrow(args, yaml);
}

void KubeCluster::restartApiServer() {
  runScript({"restart-apiserver", dir_}, "restarting kube-apiserver");
  loadState();
}

void KubeCluster::createNamespace(const std::string& ns) const {
  nlohmann::json namespace_object = {
      {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}};
  applyYaml(namespace_object.dump());
}

void KubeCluster::createReadyPod(const std::string& ns, const std::string& name,
                                 const std::map<std::string, std::string>& labels,
                                 const std::string& ip,
                                 const std::vector<ContainerPort>& ports) const {
  nlohmann::json container_ports = nlohmann::json::array();
  for (const auto& p : ports) {
    nlohmann::json port = {{"containerPort", p.port}, {"protocol", "TCP"}};
    if (!p.name.empty()) port["name"] = p.name;
    container_ports.push_back(port);
  }
  nlohmann::json pod = {{"apiVersion", "v1"},
                        {"kind", "Pod"},
                        {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
                        {"spec",
                         {{"nodeName", kNodeName},
                          {"containers",
                           {{{"name", "app"},
                             {"image", "kube-sticky/test-backend:dev"},
                             {"ports", container_ports}}}}}}};
  kubectlOrThrow({"create", "-f", "-"}, pod.dump());
  nlohmann::json status = {{"status",
                            {{"phase", "Running"},
                             {"podIP", ip},
                             {"podIPs", {{{"ip", ip}}}},
                             {"hostIP", "127.0.0.1"},
                             {"conditions",
                              {{{"type", "Initialized"}, {"status", "True"}},
                               {{"type", "PodScheduled"}, {"status", "True"}},
                               {{"type", "ContainersReady"}, {"status", "True"}},
                               readyStatus(true)}}}}};
  kubectlOrThrow({"patch", "pod", name, "--namespace", ns, "--subresource=status", "--type=merge",
                  "-p", status.dump()});
}

void KubeCluster::setPodReady(const std::string& ns, const std::string& name, bool ready) const {
  // A merge patch replaces the conditions list, so send all of them.
  const char* value = ready ? "True" : "False";
  nlohmann::json status = {{"status",
                            {{"conditions",
                              {{{"type", "Initialized"}, {"status", "True"}},
                               {{"type", "PodScheduled"}, {"status", "True"}},
                               {{"type", "ContainersReady"}, {"status", value}},
                               readyStatus(ready)}}}}};
  kubectlOrThrow({"patch", "pod", name, "--namespace", ns, "--subresource=status", "--type=merge",
                  "-p", status.dump()});
}

void KubeCluster::deletePod(const std::string& ns, const std::string& name, bool force) const {
  std::vector<std::string> args = {"delete", "pod", name, "--namespace", ns, "--wait=false"};
  if (force) args.insert(args.end(), {"--grace-period=0", "--force"});
  kubectlOrThrow(args);
}

}  // namespace sticky::test
