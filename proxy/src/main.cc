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

#include "common/flags.h"
#include "common/log.h"
#include "common/version.h"
#include "config/proxy_config.h"
#include "server/server.h"

namespace {

using namespace sticky;
using namespace sticky::proxy;

constexpr const char* kSummary =
    R"(Sticky-session HTTP proxy: requests carrying the same session header value go to the same
endpoint. Configured by a static file (--config), by sticky-operator over the admin socket
(--admin-socket), or both.)";

constexpr const char* kFooter =
    R"(Exit status: 0 after a drain, 1 on a startup error, 2 on a usage error.
Signals: SIGHUP reloads --config; SIGTERM or SIGINT stop accepting, let requests in flight
finish (up to limits.drainTimeout) and exit 0.)";

struct Flags {
  std::string config_file;
  Duration shutdown_delay{0};
  ServerOptions server;
  RedisConfig redis;  // used when --redis-address or --redis-sentinels is given
};

Result<Ok> durationFlag(const std::string& text, Duration& out) {
  auto d = parseDuration(text);
  if (!d || d->count() <= 0) return fail("a positive duration such as 100ms or 1s");
  out = *d;
  return Ok{};
}

void addRedisFlags(FlagSet& set, RedisConfig& redis) {
  set.addString("--redis-address", "HOST:PORT",
                "keep the stick table in this Redis (>= 7.0) as well, shared by every replica "
                "pointed at it (sharedTable.redis.address in the config file; default: off).",
                &redis.address, "STICKY_REDIS_ADDRESS");
  set.addValue(
      "--redis-sentinels", "HOST:PORT,...",
      "find the Redis primary through these Sentinels instead (with --redis-master-name).",
      [&redis](const std::string& text) -> Result<Ok> {
        redis.sentinels.clear();
        std::string_view rest = text;
        while (!rest.empty()) {
          size_t comma = rest.find(',');
          std::string_view item = rest.substr(0, comma);
          if (!item.empty()) redis.sentinels.emplace_back(item);
          if (comma == std::string_view::npos) break;
          rest.remove_prefix(comma + 1);
        }
        if (redis.sentinels.empty()) return fail("a comma-separated list of HOST:PORT");
        return Ok{};
      },
      "STICKY_REDIS_SENTINELS");
  set.addString("--redis-master-name", "NAME",
                "the name the Sentinels monitor the primary as (such as mymaster).",
                &redis.master_name, "STICKY_REDIS_MASTER_NAME");
  set.addString("--redis-username", "USER", "Redis ACL user for AUTH (default: the default user).",
                &redis.username, "STICKY_REDIS_USERNAME");
  set.addString("--redis-password-file", "FILE",
                "read the Redis password from FILE (a mounted Secret); default: no AUTH.",
                &redis.password_file, "STICKY_REDIS_PASSWORD_FILE");
  set.addString("--redis-key-prefix", "PREFIX",
                "start every Redis key and the events channel with PREFIX (default sticky:); "
                "proxies sharing sessions must use the same one.",
                &redis.key_prefix, "STICKY_REDIS_KEY_PREFIX");
  set.addValue(
      "--redis-command-timeout", "DURATION",
      "how long a request waits for Redis on a new session before it is placed locally "
      "(default 100ms).",
      [&redis](const std::string& text) { return durationFlag(text, redis.command_timeout); },
      "STICKY_REDIS_COMMAND_TIMEOUT");
  set.addValue(
      "--redis-connect-timeout", "DURATION",
      "timeout of one connection attempt, TLS handshake included (default 500ms).",
      [&redis](const std::string& text) { return durationFlag(text, redis.connect_timeout); },
      "STICKY_REDIS_CONNECT_TIMEOUT");
  set.addBool("--redis-tls",
              "connect to Redis, and to the Sentinels, over TLS (sharedTable.redis.tls; default: "
              "plain TCP).",
              &redis.tls, "STICKY_REDIS_TLS");
  set.addString("--redis-tls-ca-file", "FILE",
                "verify the Redis server against the CA certificates (PEM) in FILE (default: the "
                "system's CAs).",
                &redis.ca_file, "STICKY_REDIS_TLS_CA_FILE");
  set.addString("--redis-tls-server-name", "NAME",
                "send NAME as SNI and require the server certificate to name it (default: the "
                "host of each address).",
                &redis.server_name, "STICKY_REDIS_TLS_SERVER_NAME");
  set.addBool("--redis-tls-insecure-skip-verify",
              "accept any server certificate: for tests only, never in production.",
              &redis.insecure_skip_verify, "STICKY_REDIS_TLS_INSECURE_SKIP_VERIFY");
  set.addString("--redis-tls-cert-file", "FILE",
                "present the client certificate (PEM) in FILE, for a Redis with tls-auth-clients "
                "(with --redis-tls-key-file).",
                &redis.cert_file, "STICKY_REDIS_TLS_CERT_FILE");
  set.addString("--redis-tls-key-file", "FILE", "the private key (PEM) of --redis-tls-cert-file.",
                &redis.key_file, "STICKY_REDIS_TLS_KEY_FILE");
}

/// A flag's value parsed by `parse` (nullopt: refused, `expected` says what is allowed) into `out`.
template <class T, class Parse>
FlagSet::Apply choiceFlag(Parse parse, T& out, const char* expected) {
  return [parse, &out, expected](const std::string& text) -> Result<Ok> {
    auto value = parse(text);
    if (!value) return fail(expected);
    out = *value;
    return Ok{};
  };
}

void addAccessLogFlags(FlagSet& set, AccessLogOptions& log) {
  set.addString("--access-log", "stdout|stderr|PATH",
                "write one line per request to stdout, stderr or the file PATH (appended to; "
                "default: off, which costs the request path nothing).",
                &log.destination, "STICKY_ACCESS_LOG");
  set.addValue("--access-log-format", "json|text",
               "access log lines as JSON objects (default) or as --log-format text lines.",
               choiceFlag(parseLogFormat, log.format, "json or text"), "STICKY_ACCESS_LOG_FORMAT");
  set.addValue(
      "--access-log-key", "none|hash|plain",
      "the session key in the access log: left out, as key_hash (16 hex digits of the stick "
      "table's key hash; default), or as sent (key).",
      choiceFlag(parseAccessLogKey, log.key, "none, hash or plain"), "STICKY_ACCESS_LOG_KEY");
  set.addValue("--access-log-path", "none|path|full",
               "the request target in the access log: left out, the path without the query string "
               "(default; queries often carry tokens), or as sent.",
               choiceFlag(parseAccessLogPath, log.path, "none, path or full"),
               "STICKY_ACCESS_LOG_PATH");
}

/// A startup error: one line, exit 1.
[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "sticky-proxy: %s\n", message.c_str());
  std::exit(kExitFailure);
}

/// The flags into `flags`; an exit code when the process should stop here (help, version, usage).
std::optional<int> parseFlags(int argc, char** argv, Flags& flags) {
  FlagSet set("sticky-proxy", kSummary, kFooter);
  set.addString("--config", "FILE",
                "proxy config, YAML or JSON (by extension; otherwise detected). Re-read on "
                "SIGHUP: a valid file replaces the config atomically, an invalid one is logged "
                "and the previous config keeps serving.",
                &flags.config_file);
  set.addString("--listen", "HOST:PORT",
                "address for client traffic when the config has no `listen` (default "
                "0.0.0.0:8080; [::]:8080 for IPv6). Cannot change at runtime.",
                &flags.server.listen);
  set.addString("--admin-socket", "PATH",
                "serve the admin API (config apply, stats, sessions, health) on a Unix socket at "
                "PATH (mode 0600; a stale socket file is replaced).",
                &flags.server.admin_socket);
  set.addString("--metrics-listen", "HOST:PORT",
                "serve Prometheus metrics at GET /metrics, and /healthz and /readyz, on "
                "HOST:PORT (default: off).",
                &flags.server.metrics_listen);
  set.addValue(
      "--workers", "N",
      "worker threads, each with its own event loop and listening socket (default: one "
      "per core).",
      [&flags](const std::string& text) -> Result<Ok> {
        unsigned n = 0;
        auto r = std::from_chars(text.data(), text.data() + text.size(), n);
        if (r.ec != std::errc() || r.ptr != text.data() + text.size() || n == 0 || n > 1024)
          return fail("a number from 1 to 1024");
        flags.server.workers = n;
        return Ok{};
      });
  set.addValue(
      "--shutdown-delay", "DURATION",
      "on SIGTERM, fail /readyz at once but keep accepting connections this long (so the "
      "endpoints of the Service drop this pod first), then drain (default 0s: drain at once). "
      "A second SIGTERM or SIGINT cuts the delay short.",
      [&flags](const std::string& text) -> Result<Ok> {
        auto d = parseDuration(text);
        if (!d || d->count() < 0) return fail("a duration such as 5s (0s: no delay)");
        flags.shutdown_delay = *d;
        return Ok{};
      },
      "STICKY_SHUTDOWN_DELAY");
  addRedisFlags(set, flags.redis);
  addAccessLogFlags(set, flags.server.access_log);
  auto parsed = set.parse(argc, argv);
  if (!parsed.exit_code && (!flags.redis.address.empty() || !flags.redis.sentinels.empty())) {
    flags.server.shared_table.redis = flags.redis;
    ProxyConfig probe;
    probe.shared_table = flags.server.shared_table;
    if (ConfigErrors errors = validate(probe); !errors.empty())
      parsed = set.usageError("the --redis-* flags: " + describe(errors));
  }
  if (!parsed.exit_code && flags.config_file.empty() && flags.server.admin_socket.empty())
    parsed = set.usageError(
        "nothing would configure the proxy: give --config FILE, --admin-socket PATH, or both");
  if (parsed.exit_code) return parsed.finish();
  setLogLevel(set.logLevel());
  setLogFormat(set.logFormat());
  return std::nullopt;
}

ConfigFormat formatOf(const std::string& path) {
  auto ends = [&](std::string_view s) { return std::string_view(path).ends_with(s); };
  if (ends(".json")) return ConfigFormat::Json;
  if (ends(".yaml") || ends(".yml")) return ConfigFormat::Yaml;
  return ConfigFormat::Auto;
}

/// Reads and parses the config file; the error is one sentence naming the file.
Result<ProxyConfig> loadConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return fail("cannot read the config file " + path + " (does it exist and is it readable?)");
  std::ostringstream text;
  text << in.rdbuf();
  auto parsed = parseProxyConfig(text.str(), formatOf(path));
  if (!parsed) return fail("the config file " + path + " is invalid: " + describe(parsed.error()));
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
  Flags flags;
  if (auto exit_code = parseFlags(argc, argv, flags)) return *exit_code;

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
    logInfo(versionLine("sticky-proxy") + " listening on " + describeListen(server) + " (" +
            std::to_string(server.workerCount()) +
            (server.workerCount() == 1 ? " worker" : " workers") + extras + ")");

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
      const char* name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
      if (flags.shutdown_delay.count() > 0) {
        server.stats().shutting_down.store(true, std::memory_order_relaxed);
        logInfo(std::string(name) + " received; /readyz fails from now, still accepting for " +
                formatDuration(flags.shutdown_delay) + " before draining");
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(flags.shutdown_delay);
        timespec wait{static_cast<time_t>(ns.count() / 1'000'000'000),
                      static_cast<long>(ns.count() % 1'000'000'000)};
        sigset_t stop_signals;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGTERM);
        sigaddset(&stop_signals, SIGINT);
        if (sigtimedwait(&stop_signals, nullptr, &wait) > 0)
          logInfo("second signal: shutdown delay cut short");
      }
      logInfo(std::string("draining: ") + name +
              " received; no new connections, finishing requests in flight");
      bool clean = server.drain();
      logInfo(clean ? "drained; exiting" : "drain timeout cut connections; exiting");
      return 0;
    }
  } catch (const std::exception& e) {
    die(std::string("fatal: ") + e.what());
  }
}
