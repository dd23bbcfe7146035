#include "support/proxy_process.h"

#include <csignal>

#include <doctest/doctest.h>

#include "support/paths.h"

namespace sticky::test {

using namespace std::chrono_literals;

ProxyProcess::ProxyProcess(ProxyOptions options) : options_(std::move(options)) {
  start(0);
}

void ProxyProcess::restart() {
  start(port_);
}

void ProxyProcess::kill() {
  process_->signal(SIGKILL);
  process_->wait(10s);
}

void ProxyProcess::start(uint16_t port) {
  std::vector<std::string> argv = {sticky::test::proxyBinary(), "--workers",
                                   std::to_string(options_.workers)};
  if (!options_.config_file.empty()) {
    argv.insert(argv.end(), {"--config", options_.config_file});
  }
  // The proxy uses --listen only where the config has no `listen` of its own.
  argv.insert(argv.end(), {"--listen", "127.0.0.1:" + std::to_string(port)});
  if (!options_.admin_socket.empty()) {
    argv.insert(argv.end(), {"--admin-socket", options_.admin_socket});
  }
  if (options_.metrics) argv.insert(argv.end(), {"--metrics-listen", "127.0.0.1:0"});
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  if (options_.max_open_files > 0) {
    // The shell sets the limit and execs the proxy in its place (same pid).
    argv.insert(argv.begin(),
                {"/bin/sh", "-c",
                 "ulimit -n " + std::to_string(options_.max_open_files) + " && exec \"$@\"", "sh"});
  }

  process_ = std::make_unique<Process>(argv, options_.log_path);
  std::optional<uint16_t> listening;
  bool up = waitFor(
      [&] {
        listening = listeningPort(process_->log());
        return listening && (options_.admin_socket.empty() || admin(1s).healthy());
      },
      options_.start_timeout);
  REQUIRE_MESSAGE(up, "sticky-proxy did not start; log:\n" << process_->log());
  port_ = *listening;
}

uint16_t ProxyProcess::metricsPort() const {
  auto port = metricsPortIn(process_->log());
  REQUIRE_MESSAGE(port.has_value(), "no metrics port in the log:\n" << process_->log());
  return *port;
}

admin::AdminClient ProxyProcess::admin(std::chrono::milliseconds timeout) const {
  return admin::AdminClient(options_.admin_socket, timeout);
}

}  // namespace sticky::test
