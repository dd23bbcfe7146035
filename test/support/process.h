#pragma once
// Child processes for tests: the real sticky-proxy, backends, etcd, ... Killed on destruction.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sticky::test {

class Process {
 public:
  /// Starts `argv[0]` (a path) with `argv`; stdout and stderr go to `log_path` (or inherit if
  /// empty), stdin is /dev/null, and no other descriptor of the test is inherited. Throws
  /// std::runtime_error if it cannot be started.
  Process(std::vector<std::string> argv, std::string log_path = {},
          std::vector<std::string> extra_env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;

  int pid() const { return pid_; }
  bool running();
  void signal(int sig);
  /// Waits for exit up to `timeout`; returns the exit status (as from waitpid's WEXITSTATUS, or
  /// 128+signal), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  /// SIGTERM, wait up to `grace`, then SIGKILL.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  const std::string& logPath() const { return log_path_; }
  std::string log() const;  // contents of the log file

 private:
  int pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

/// Polls `condition` every `interval` until it is true or `timeout` passes. Returns its last value.
bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
             std::chrono::milliseconds interval = std::chrono::milliseconds(20));

/// A fresh temporary directory, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// A TCP port that is free right now on 127.0.0.1 (bind to 0, read, close). Another process
/// may take it before the caller binds it; where a program can listen on port 0 and say which
/// port it got, prefer that (listeningPort, metricsPortIn).
int freePort();

/// The port in the last "listening on HOST:PORT" line of a log (sticky-proxy's and the test
/// backend's start line), if any.
std::optional<uint16_t> listeningPort(const std::string& log);

/// The metrics port in sticky-proxy's start line ("..., metrics on HOST:PORT)"), if any.
std::optional<uint16_t> metricsPortIn(const std::string& log);

std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& content);

}  // namespace sticky::test
