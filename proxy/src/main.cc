// sticky-proxy: flags -> Server. Static mode (--config FILE, reloaded on SIGHUP), operator mode
// (--admin-socket PATH, configs pushed by sticky-operator), or both. SIGTERM/SIGINT drain.

#include <signal.h>

#include <charconv>
#include <cstdio>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "config/proxy_config.h"
#include "common/log.h"
#include "server/server.h"

namespace {

using namespace sticky;
using namespace sticky::proxy;

constexpr std::string_view kVersion = "0.1.0";

constexpr std::string_view kUsage = R"(usage: sticky-proxy [flags]

Sticky-session HTTP proxy: requests carrying the same session header value go to the same
endpoint. Configured by a static file (--config), by sticky-operator over the admin socket
(--admin-socket), or both.

flags:
  --config FILE           proxy config, YAML or JSON (by extension; otherwise detected).
                          Re-read on SIGHUP: a valid file replaces the config atomically, an
                          invalid one is logged and the previous config keeps serving.
  --listen HOST:PORT      address for client traffic when the config has no `listen`
                          (default 0.0.0.0:8080; [::]:8080 for IPv6). Cannot change at runtime.
  --admin-socket PATH     serve the admin API (config apply, stats, sessions, health) on a Unix
                          socket at PATH (mode 0600; a stale socket file is replaced).
  --metrics-listen HOST:PORT
                          serve Prometheus metrics at GET /metrics on HOST:PORT (default: off).
  --workers N             worker threads, each with its own event loop and listening socket
                          (default: one per core).
  --log-level LEVEL       debug, info, warn or error (default info). Logs go to stderr.
  --help                  print this help and exit.
  --version               print the version and exit.

signals: SIGHUP reloads --config; SIGTERM or SIGINT stop accepting, let requests in flight
finish (up to limits.drainTimeout) and exit 0.
)";

struct Flags {
  std::string config_file;
  ServerOptions server;
  LogLevel log_level = LogLevel::Info;
};

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "sticky-proxy: %s\n", message.c_str());
  std::exit(1);
}

Flags parseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
      std::exit(0);
    }
    if (arg == "--version") {
      std::printf("sticky-proxy %.*s\n", static_cast<int>(kVersion.size()), kVersion.data());
      std::exit(0);
    }
    std::string_view name = arg;
    std::optional<std::string> value;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
    }
    auto take = [&]() -> std::string {
      if (value) return *value;
      if (i + 1 >= argc) die("flag " + std::string(name) + " needs a value; see --help.");
      return argv[++i];
    };
    if (name == "--config") {
      flags.config_file = take();
    } else if (name == "--listen") {
      flags.server.listen = take();
    } else if (name == "--admin-socket") {
      flags.server.admin_socket = take();
    } else if (name == "--metrics-listen") {
      flags.server.metrics_listen = take();
    } else if (name == "--workers") {
      std::string text = take();
      unsigned n = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), n);
      if (r.ec != std::errc() || r.ptr != text.data() + text.size() || n == 0 || n > 1024)
        die("--workers must be a number from 1 to 1024, got '" + text + "'.");
      flags.server.workers = n;
    } else if (name == "--log-level") {
      std::string text = take();
      auto level = parseLogLevel(text);
      if (!level) die("--log-level must be debug, info, warn or error, got '" + text + "'.");
      flags.log_level = *level;
    } else {
      die("unknown flag '" + std::string(arg) + "'; see --help.");
    }
  }
  if (flags.config_file.empty() && flags.server.admin_socket.empty())
    die("nothing would configure the proxy: give --config FILE, --admin-socket PATH, or both.");
  return flags;
}

ConfigFormat formatOf(const std::string& path) {
  auto ends = [&](std::string_view s) { return std::string_view(path).ends_with(s); };
  if (ends(".json")) return ConfigFormat::Json;
  if (ends(".yaml") || ends(".yml")) return ConfigFormat::Yaml;
  return ConfigFormat::Auto;
}

std::string joinErrors(const ConfigErrors& errors) {
  std::string out;
  for (auto& e : errors) {
    if (!out.empty()) out += "; ";
    out += e.toString();
  }
  return out;
}

/// Reads and parses the config file; the error is one sentence naming the file.
Result<ProxyConfig> loadConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return fail("cannot read the config file " + path + " (does it exist and is it readable?)");
  std::ostringstream text;
  text << in.rdbuf();
  auto parsed = parseProxyConfig(text.str(), formatOf(path));
  if (!parsed)
    return fail("the config file " + path + " is invalid: " + joinErrors(parsed.error()));
  return std::move(parsed).value();
}

std::string describeListen(const Server& server) {
  auto ep = server.listenEndpoint();
  std::string address = ep.address().to_string();
  if (ep.address().is_v6()) address = "[" + address + "]";
  return address + ":" + std::to_string(ep.port());
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = parseFlags(argc, argv);
  setLogLevel(flags.log_level);

  // Every thread inherits this mask; only the sigwait below sees these signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    std::optional<ProxyConfig> config;
    if (!flags.config_file.empty()) {
      auto loaded = loadConfig(flags.config_file);
      if (!loaded) die(loaded.error().message);
      config = std::move(loaded).value();
    }
    auto started = Server::start(flags.server, std::move(config));
    if (!started) die(started.error().message);
    auto& server = *started.value();

    std::string extras;
    if (!flags.server.admin_socket.empty()) extras += ", admin socket " + flags.server.admin_socket;
    if (auto port = server.metricsPort())
      extras += ", metrics on " +
                flags.server.metrics_listen.substr(0, flags.server.metrics_listen.rfind(':')) +
                ":" + std::to_string(*port);
    logInfo("sticky-proxy " + std::string(kVersion) + " listening on " + describeListen(server) +
            " (" + std::to_string(server.workerCount()) + " workers" + extras + ")");

    while (true) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGHUP) {
        if (flags.config_file.empty()) {
          logWarn("SIGHUP ignored: there is no --config file to reload");
          continue;
        }
        logInfo("SIGHUP: reloading " + flags.config_file);
        auto loaded = loadConfig(flags.config_file);
        if (!loaded) {
          server.stats().config_rejects.fetch_add(1, std::memory_order_relaxed);
          logError(loaded.error().message + "; the previous config keeps serving");
          continue;
        }
        (void)server.apply(std::move(loaded).value());  // logs applied / rejected
        continue;
      }
      logInfo(std::string("draining: ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
              " received; no new connections, finishing requests in flight");
      bool clean = server.drain();
      logInfo(clean ? "drained; exiting" : "drain timeout cut connections; exiting");
      return 0;
    }
  } catch (const std::exception& e) {
    die(std::string("fatal: ") + e.what());
  }
}
