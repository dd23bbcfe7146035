// Both real binaries share one command line (lib/common/flags.h): --version, usage errors
// (exit 2, one line naming the flag), --help, --log-level/--log-format and their env vars.
// Here, beside the operator's tests, because this suite is the one that builds both binaries.
#include <doctest/doctest.h>

#include <signal.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/paths.h"
#include "support/process.h"

namespace sticky::test {
namespace {

using namespace std::chrono_literals;

struct Run {
  int status;
  std::string output;
};

Run run(const TempDir& dir, std::vector<std::string> argv, std::vector<std::string> env = {}) {
  static int n = 0;
  std::string log = dir.file("run-" + std::to_string(++n) + ".log");
  Process p(std::move(argv), log, std::move(env));
  int status = p.wait(10s);
  return {status, readFile(log)};
}

struct Binary {
  const char* name;
  std::string path;
  std::vector<std::string> required;  // flags without which the binary refuses to start
};

const std::vector<Binary> kBinaries = {
    {"sticky-proxy",
     sticky::test::proxyBinary(),
     {"--admin-socket", "/nonexistent/dir/admin.sock"}},
    {"sticky-operator",
     sticky::test::operatorBinary(),
     {"--admin-socket", "/nonexistent/admin.sock"}},
};

TEST_CASE("both binaries: --version prints name and version, exit 0") {
  TempDir dir;
  for (const auto& b : kBinaries) {
    INFO(b.name);
    auto r = run(dir, {b.path, "--version"});
    CHECK(r.status == 0);
    CHECK(r.output.rfind(std::string(b.name) + " 0.2.0", 0) == 0);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  }
}

TEST_CASE("both binaries: a usage error exits 2 with one line naming the flag") {
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string says;
  };
  std::vector<Case> cases = {
      {{"--bogus"}, {}, "unknown flag '--bogus'"},
      {{"--log-level", "loud"}, {}, "--log-level must be debug, info, warn or error, not 'loud'"},
      {{"--log-format=xml"}, {}, "--log-format must be text or json, not 'xml'"},
      {{}, {"STICKY_LOG_LEVEL=verbose"}, "$STICKY_LOG_LEVEL (for --log-level) must be"},
      {{"--log-level"}, {}, "--log-level needs a value (LEVEL)"},
  };
  for (const auto& b : kBinaries) {
    for (const auto& c : cases) {
      INFO(b.name << ": expecting " << c.says);
      std::vector<std::string> argv = {b.path};
      argv.insert(argv.end(), b.required.begin(), b.required.end());
      argv.insert(argv.end(), c.args.begin(), c.args.end());
      auto r = run(dir, argv, c.env);
      CHECK(r.status == 2);
      CHECK(r.output.rfind(std::string(b.name) + ": ", 0) == 0);
      CHECK(r.output.find(c.says) != std::string::npos);
      CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
    }
  }
}

TEST_CASE("sticky-operator: its own usage errors exit 2") {
  TempDir dir;
  std::string op = sticky::test::operatorBinary();
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  std::vector<Case> cases = {
      {{}, "--admin-socket is required"},
      {{"--admin-socket", "s", "--lease-duration", "soon"},
       "--lease-duration must be a positive duration such as 10s, not 'soon'"},
      {{"--admin-socket", "s", "--renew-deadline", "20s"},
       "--renew-deadline must be shorter than --lease-duration"},
      {{"--admin-socket", "s", "--leader-elect=maybe"}, "--leader-elect must be true or false"},
      {{"--admin-socket", "s", "--namespaces", ","}, "--namespaces must be \"all\" or namespace"},
      {{"--admin-socket", "s", "extra"}, "unexpected argument 'extra'"},
      {{"--admin-socket", "s", "--metrics-listen", "8081"},
       "--metrics-listen: invalid listen address '8081': expected HOST:PORT"},
      {{"--admin-socket", "s", "--metrics-listen=127.0.0.1:99999"},
       "--metrics-listen: invalid listen address '127.0.0.1:99999': the port must be"},
  };
  for (const auto& c : cases) {
    INFO("expecting " << c.says);
    std::vector<std::string> argv = {op};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = run(dir, argv);
    CHECK(r.status == 2);
    CHECK(r.output.find(c.says) != std::string::npos);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  }
}

TEST_CASE("both binaries: --help lists the shared flags and exits 0") {
  TempDir dir;
  for (const auto& b : kBinaries) {
    INFO(b.name);
    auto r = run(dir, {b.path, "--help"});
    CHECK(r.status == 0);
    for (const char* flag : {"--admin-socket", "--log-level", "--log-format", "STICKY_LOG_LEVEL",
                             "STICKY_LOG_FORMAT", "--version", "--help"})
      CHECK_MESSAGE(r.output.find(flag) != std::string::npos, "help lacks " << flag);
  }
  auto op = run(dir, {sticky::test::operatorBinary(), "--help"});
  for (const char* flag :
       {"--kubeconfig", "--namespaces", "--leader-elect", "--lease-namespace", "--lease-name",
        "--lease-duration", "--renew-deadline", "--retry-period", "--identity", "--proxy-poll",
        "--status-interval", "STICKY_NAMESPACES", "--metrics-listen", "STICKY_METRICS_LISTEN"})
    CHECK_MESSAGE(op.output.find(flag) != std::string::npos, "operator help lacks " << flag);
}

TEST_CASE("sticky-proxy: --log-format json (or STICKY_LOG_FORMAT) writes one JSON object a line") {
  TempDir dir;
  std::string socket = dir.file("admin.sock");
  for (bool by_env : {false, true}) {
    INFO("by env: " << by_env);
    std::vector<std::string> argv = {sticky::test::proxyBinary(),
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--admin-socket",
                                     socket,
                                     "--workers",
                                     "1"};
    std::vector<std::string> env;
    if (by_env)
      env.push_back("STICKY_LOG_FORMAT=json");
    else
      argv.insert(argv.end(), {"--log-format", "json"});
    Process proxy(argv, dir.file(by_env ? "env.log" : "flag.log"), env);
    REQUIRE(waitFor([&] { return proxy.log().find("listening on") != std::string::npos; }, 10s));
    proxy.signal(SIGTERM);
    CHECK(proxy.wait(10s) == 0);
    std::istringstream lines(proxy.log());
    int n = 0;
    for (std::string line; std::getline(lines, line); ++n) {
      INFO(line);
      auto j = nlohmann::json::parse(line);
      CHECK(j["ts"].get<std::string>().ends_with("Z"));
      CHECK(j.contains("level"));
      CHECK(j.contains("msg"));
    }
    CHECK(n >= 2);  // listening ..., draining ..., drained
  }
}

}  // namespace
}  // namespace sticky::test
