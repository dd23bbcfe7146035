#pragma once
// The real sticky-proxy as a child process: the one launcher every test uses. It listens on
// port 0 (or the port it had before a restart) and reads its ports from its start line.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "admin_api/admin_client.h"
#include "support/process.h"

namespace sticky::test {

// Every member has an initializer so designated initializers may name only what they set.
struct ProxyOptions {
  /// Where the log (and a config written by the caller) goes; required.
  std::string log_path = {};
  /// --config FILE. The proxy gets --listen 127.0.0.1:0 too (the port it had, on a restart),
  /// which it uses when the config has no `listen`.
  std::string config_file = {};
  /// --admin-socket PATH; the launcher then also waits until the socket answers /healthz.
  std::string admin_socket = {};
  /// --metrics-listen 127.0.0.1:0 (read back with metricsPort()).
  bool metrics = false;
  int workers = 2;
  std::vector<std::string> extra_args = {};
  /// > 0: the proxy runs with RLIMIT_NOFILE (soft and hard) set to this many descriptors.
  int max_open_files = 0;
  std::chrono::milliseconds start_timeout = std::chrono::seconds(20);
};

class ProxyProcess {
 public:
  /// Starts the proxy and waits until it serves (REQUIREs it, with the log, in doctest).
  explicit ProxyProcess(ProxyOptions options);

  /// Starts it again after kill()/stop(): on the port it had, unless a config file's `listen`
  /// says otherwise.
  void restart();
  void kill();
  void stop() { process_->stop(); }

  uint16_t port() const { return port_; }
  /// The metrics port (options.metrics); REQUIREs that the start line named one.
  uint16_t metricsPort() const;
  int pid() const { return process_->pid(); }
  Process& process() { return *process_; }
  std::string log() const { return process_->log(); }
  const ProxyOptions& options() const { return options_; }
  /// A client for the admin socket (options.admin_socket).
  admin::AdminClient admin(std::chrono::milliseconds timeout = std::chrono::seconds(2)) const;

 private:
  void start(uint16_t port);

  ProxyOptions options_;
  uint16_t port_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace sticky::test
