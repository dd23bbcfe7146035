// The shared stick table over TLS, through real processes: two sticky-proxy replicas started
// with the --redis-tls-* flags against a redis-server that only takes TLS clients with a
// certificate (tls-auth-clients yes) agree on every key; and the TLS flags' startup errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "integration/proxy/proxy_harness.h"
#include "support/paths.h"
#include "support/redis_server.h"
#include "support/test_pki.h"

namespace sticky::test {
namespace {

std::string via(ProxyProc& proxy, const std::string& k) {
  auto client = proxy.client();
  auto res = client.get("/", key(k));
  REQUIRE_MESSAGE(res.status == 200, k << ": " << res.status << " " << res.error << res.body);
  return backendOf(res);
}

/// Exit status and output of a sticky-proxy that is expected to stop at once.
std::pair<int, std::string> runProxy(const TempDir& dir, std::vector<std::string> args) {
  static int n = 0;
  std::string log = dir.file("tls-run-" + std::to_string(++n) + ".log");
  args.insert(args.begin(), sticky::test::proxyBinary());
  Process p(args, log);
  int status = p.wait(10s);
  return {status, readFile(log)};
}

}  // namespace

TEST_CASE("shared table over TLS - two replicas with --redis-tls agree on every key") {
  TempDir dir;
  TestPki pki;
  RedisServer redis(RedisServerOptions{
      .tls = RedisTls{pki.server_cert, pki.server_key, pki.ca_cert, /*auth_clients=*/true}});
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  ProxyConfig config =
      configOf(1, {stickyRoute("shop/chat", {b1.endpoint(), b2.endpoint(), b3.endpoint()})});
  std::vector<std::string> args{"--redis-address",
                                redis.tlsAddress(),
                                "--redis-command-timeout",
                                "200ms",
                                "--redis-tls",
                                "--redis-tls-ca-file",
                                pki.ca_cert,
                                "--redis-tls-cert-file",
                                pki.client_cert,
                                "--redis-tls-key-file",
                                pki.client_key};
  std::vector<std::unique_ptr<ProxyProc>> proxies;
  for (int i = 0; i < 2; ++i) {
    proxies.push_back(std::make_unique<ProxyProc>(dir, config, args));
    ProxyProc& p = *proxies.back();
    REQUIRE_MESSAGE(
        waitFor([&] { return p.log().find("redis connected") != std::string::npos; }, 10s),
        p.log());
    CHECK(p.log().find("over TLS") != std::string::npos);
  }
  std::map<std::string, std::string> where;
  for (int i = 0; i < 100; ++i) {
    std::string k = "user-" + std::to_string(i);
    where[k] = via(*proxies[i % 2], k);
  }
  for (auto& [k, backend] : where) {
    INFO("key " << k);
    CHECK(via(*proxies[0], k) == backend);
    CHECK(via(*proxies[1], k) == backend);
  }
  CHECK(redis.command({"KEYS", "sticky:shop/chat:*"}).elements.size() == 100);  // not the load hash
  for (auto& p : proxies) CHECK(p->log().find("redis connect failed") == std::string::npos);
}

TEST_CASE("shared table over TLS - the flags' mistakes stop the proxy with one sentence") {
  TempDir dir;
  TestPki pki;
  writeFile(dir.file("good.json"), R"({"routes": []})");
  std::vector<std::string> base{"--config", dir.file("good.json"), "--redis-address",
                                "127.0.0.1:6379"};
  struct Expect {
    std::vector<std::string> args;
    int status;
    std::string says;
  };
  std::vector<Expect> cases = {
      {{"--redis-tls", "--redis-tls-ca-file", dir.file("missing.crt")},
       2,
       "sharedTable.redis.caFile: cannot read \"" + dir.file("missing.crt") + "\""},
      {{"--redis-tls-ca-file", pki.ca_cert},
       2,
       "sharedTable.redis.caFile: is only used with TLS; set tls: true (--redis-tls)"},
      {{"--redis-tls", "--redis-tls-cert-file", pki.client_cert},
       2,
       "needs both certFile and keyFile"},
      {{"--redis-tls", "--redis-tls-cert-file", pki.client_cert, "--redis-tls-key-file",
        pki.server_key},
       1,
       "does not belong to the certificate"},
      {{"--redis-tls=maybe"}, 2, "--redis-tls must be true or false"},
  };
  for (auto& c : cases) {
    INFO("expecting: " << c.says);
    std::vector<std::string> args = base;
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto [status, out] = runProxy(dir, args);
    CHECK(status == c.status);
    CHECK(out.find(c.says) != std::string::npos);
    CHECK(out.rfind("sticky-proxy: ", 0) == 0);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  }
}

}  // namespace sticky::test
