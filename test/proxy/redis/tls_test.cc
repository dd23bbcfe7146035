// TLS to Redis against a real redis-server with a TLS port and a throwaway PKI (openssl CLI):
// commands over TLS, a server verified by IP and by DNS name, a wrong CA and a wrong server name
// refused (and retried, not crashed on), insecureSkipVerify, a client certificate for
// tls-auth-clients yes; and TlsContext::create's refusals of bad files.
#include "redis/tls.h"

#include <doctest/doctest.h>

#include <atomic>

#include "proxy/redis/client_fixture.h"
#include "redis/client.h"
#include "support/redis_server.h"
#include "support/test_pki.h"

namespace sticky::proxy::redis {
namespace {

using namespace testing;
using sticky::test::RedisServer;
using sticky::test::RedisServerOptions;
using sticky::test::RedisTls;
using sticky::test::TempDir;
using sticky::test::TestPki;
using sticky::test::waitFor;

RedisServer tlsServer(const TestPki& pki, bool auth_clients = false) {
  return RedisServer(RedisServerOptions{
      .tls = RedisTls{pki.server_cert, pki.server_key, pki.ca_cert, auth_clients}});
}

ClientOptions tlsOptions(const std::string& address, const TlsOptions& tls) {
  ClientOptions options = directOptions(address);
  options.tls = TlsContext::create(tls).value();
  return options;
}

// Waits until the client has failed to connect `n` times (it keeps retrying).
bool failsRepeatedly(const RedisStats& stats, uint64_t n = 3) {
  return waitFor([&] { return stats.connect_failures.load() >= n; }, 10s);
}

}  // namespace

TEST_CASE("redis tls: commands over TLS, the server verified by its CA, by IP and by DNS name") {
  TestPki pki;
  RedisServer server = tlsServer(pki);
  for (std::string host : {"127.0.0.1", "localhost"}) {
    CAPTURE(host);
    IoThread io;
    auto stats = std::make_shared<RedisStats>();
    std::string address = host + ":" + std::to_string(server.tlsPort());
    Client client(io.io(), tlsOptions(address, {.ca_file = pki.ca_cert}), stats);
    client.start();
    REQUIRE(waitFor([&] { return client.connected(); }, 10s));
    CHECK(text(run(client, {"SET", "k-" + host, "v"})) == "OK");
    CHECK(text(run(client, {"GET", "k-" + host})) == "v");
    CHECK(server.command({"GET", "k-" + host}).text == "v");  // through the plain port
    // A big value crosses several TLS records both ways.
    std::string big(200 * 1024, 'x');
    CHECK(text(run(client, {"SET", "big", big})) == "OK");
    CHECK(text(run(client, {"GET", "big"})) == big);
    CHECK(stats->connect_failures == 0);
    client.stop();
  }
}

TEST_CASE("redis tls: a server signed by another CA is refused, and the client keeps retrying") {
  TestPki pki;
  RedisServer server = tlsServer(pki);
  IoThread io;
  LogCapture logs;
  auto stats = std::make_shared<RedisStats>();
  Client client(io.io(), tlsOptions(server.tlsAddress(), {.ca_file = pki.other_ca_cert}), stats);
  client.start();
  REQUIRE(failsRepeatedly(*stats));
  CHECK(!client.connected());
  CHECK(logs.contains("TLS handshake with " + server.tlsAddress() +
                      " failed: certificate verify failed"));
  CHECK(text(run(client, {"PING"})) == "failed: Disconnected");
  client.stop();
}

TEST_CASE("redis tls: a server whose certificate does not name serverName is refused") {
  TestPki pki;
  RedisServer server = tlsServer(pki);
  IoThread io;
  LogCapture logs;
  auto stats = std::make_shared<RedisStats>();
  Client client(
      io.io(),
      tlsOptions(server.tlsAddress(), {.ca_file = pki.ca_cert, .server_name = "redis.example"}),
      stats);
  client.start();
  REQUIRE(failsRepeatedly(*stats));
  CHECK(!client.connected());
  CHECK(logs.contains("certificate verify failed ("));
  CHECK(logs.contains("ostname mismatch)"));
  client.stop();

  // The name the certificate does carry is accepted.
  IoThread io2;
  Client named(
      io2.io(),
      tlsOptions(server.tlsAddress(), {.ca_file = pki.ca_cert, .server_name = "localhost"}),
      nullptr);
  named.start();
  REQUIRE(waitFor([&] { return named.connected(); }, 10s));
  CHECK(text(run(named, {"PING"})) == "PONG");
}

TEST_CASE("redis tls: insecureSkipVerify connects to a server no CA of ours signed") {
  TestPki pki;
  RedisServer server = tlsServer(pki);
  IoThread io;
  Client client(io.io(),
                tlsOptions(server.tlsAddress(), {.ca_file = pki.other_ca_cert,
                                                 .server_name = "redis.example",
                                                 .insecure_skip_verify = true}),
                nullptr);
  client.start();
  REQUIRE(waitFor([&] { return client.connected(); }, 10s));
  CHECK(text(run(client, {"PING"})) == "PONG");
}

TEST_CASE("redis tls: a server with tls-auth-clients takes our client certificate") {
  TestPki pki;
  RedisServer server = tlsServer(pki, true);
  SUBCASE("with certFile and keyFile") {
    IoThread io;
    Client client(io.io(),
                  tlsOptions(server.tlsAddress(), {.ca_file = pki.ca_cert,
                                                   .cert_file = pki.client_cert,
                                                   .key_file = pki.client_key}),
                  nullptr);
    client.start();
    REQUIRE(waitFor([&] { return client.connected(); }, 10s));
    CHECK(text(run(client, {"SET", "k", "v"})) == "OK");
  }
  SUBCASE("without a client certificate it is refused") {
    IoThread io;
    LogCapture logs;
    auto stats = std::make_shared<RedisStats>();
    Client client(io.io(), tlsOptions(server.tlsAddress(), {.ca_file = pki.ca_cert}), stats);
    client.start();
    REQUIRE(failsRepeatedly(*stats));
    CHECK(!client.connected());
    // TLS 1.3: the server refuses after the client's side of the handshake is done, so the
    // refusal shows on the first command (ROLE), as a TLS alert.
    CHECK(logs.contains("certificate required"));
    client.stop();
  }
}

TEST_CASE("redis tls: through Sentinels on TLS ports, the primary on its TLS port, a failover") {
  TestPki pki;
  sticky::test::RedisSentinelSet set({}, RedisTls{pki.server_cert, pki.server_key, pki.ca_cert});
  IoThread io;
  ClientOptions options = directOptions("unused:1");
  options.addresses.clear();
  for (const std::string& a : set.sentinelTlsAddresses())
    options.sentinels.push_back(Address::parse(a).value());
  options.master_name = set.masterName();
  options.channels = {"sticky:x"};
  options.tls = TlsContext::create({.ca_file = pki.ca_cert}).value();
  auto stats = std::make_shared<RedisStats>();
  Client client(io.io(), options, stats);
  std::atomic<int> subscribed{0};
  client.onSubscribed([&] { subscribed++; });
  client.start();
  REQUIRE(waitFor([&] { return client.connected() && subscribed == 1; }, 20s));
  std::string first = set.primary().tlsAddress();
  CHECK(client.primary() == first);
  CHECK(text(run(client, {"SET", "k", "v"})) == "OK");

  set.failover();
  std::string promoted = set.primary().tlsAddress();
  REQUIRE(promoted != first);
  REQUIRE(waitFor([&] { return client.epoch() >= 2 && client.connected(); }, 30s));
  CHECK(client.primary() == promoted);
  CHECK(waitFor([&] { return text(run(client, {"SET", "k", "w"})) == "OK"; }, 20s));
  CHECK(set.primary().command({"GET", "k"}).text == "w");
  CHECK(waitFor([&] { return subscribed == 2; }, 20s));
}

TEST_CASE("redis tls: TlsContext::create names the file it cannot use") {
  TestPki pki;
  TempDir dir;
  std::string garbage = dir.file("garbage.pem");
  sticky::test::writeFile(garbage, "not a certificate\n");
  auto message = [](const TlsOptions& options) {
    auto created = TlsContext::create(options);
    return created ? std::string("created") : created.error().message;
  };
  CHECK(message({.ca_file = pki.ca_cert}) == "created");
  CHECK(message({}) == "created");  // the system's CAs
  CHECK(message({.ca_file = dir.file("missing.crt")}) == "cannot read the Redis TLS CA file " +
                                                             dir.file("missing.crt") +
                                                             ": No such file or directory");
  CHECK(message({.ca_file = garbage}).starts_with("cannot load the Redis TLS CA file " + garbage));
  CHECK(message({.cert_file = pki.client_cert}) ==
        "a Redis TLS client certificate needs both a certificate file and a key file");
  CHECK(message({.cert_file = garbage, .key_file = pki.client_key})
            .starts_with("cannot load the Redis TLS client certificate " + garbage));
  CHECK(message({.cert_file = pki.client_cert, .key_file = pki.server_key}) ==
        "the Redis TLS client key " + pki.server_key + " does not belong to the certificate " +
            pki.client_cert);
  CHECK(message({.cert_file = pki.client_cert, .key_file = pki.client_key}) == "created");
}

}  // namespace sticky::proxy::redis
