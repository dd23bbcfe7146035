#pragma once
// Real Redis for tests: a redis-server on a free port in a temporary directory (no persistence),
// and a Sentinel set (a primary, a replica, three sentinels) to test failover against.
//
//   RedisServer redis({.password = "s3cret"});
//   redis.command({"SET", "k", "v"});          // a small blocking client (throws on I/O errors)
//   redis.kill();  redis.start();               // crash and come back on the same port
//   redis.freeze(); ... redis.thaw();           // SIGSTOP/SIGCONT: a hung server
//   RedisServer tls({.tls = RedisTls{...}});    // also a TLS port: tls.tlsAddress()
//
//   RedisSentinelSet set;                       // waits until the sentinels know each other
//   set.sentinelAddresses();  set.masterName();
//   set.failover();                             // kills the primary, waits for a promotion
//
// Test-only code: failures throw std::runtime_error (doctest reports them).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "redis/resp.h"
#include "support/process.h"

namespace sticky::test {

/// A TLS port besides the plain one (which the test helpers below keep using): the client
/// under test is pointed at tlsAddress(). Files as TestPki (support/test_pki.h) makes them.
struct RedisTls {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  bool auth_clients = false;  // tls-auth-clients yes: a client certificate signed by ca_file
};

struct RedisServerOptions {
  std::string password = {};                // requirepass (the default user's password)
  std::string username = {};                // with a password: an ACL user with all rights instead
  std::optional<uint16_t> replica_of = {};  // --replicaof 127.0.0.1 <port>
  std::vector<std::string> extra_args = {};
  std::optional<RedisTls> tls = {};
};

/// One blocking command on a fresh connection to 127.0.0.1:port (AUTH first when a password is
/// given). Throws std::runtime_error when the server cannot be reached or answers nothing.
proxy::redis::RespValue redisCommand(uint16_t port, const std::vector<std::string>& command,
                                     const std::string& username = {},
                                     const std::string& password = {},
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// With options.tls: the TLS port (0 without).
  uint16_t tlsPort() const { return tls_port_; }
  std::string tlsAddress() const { return "127.0.0.1:" + std::to_string(tls_port_); }
  proxy::redis::RespValue command(const std::vector<std::string>& command) const;

  /// Starts (again, on the same port) and waits until it answers PING.
  void start();
  /// SIGTERM and wait.
  void stop();
  /// SIGKILL: a crash.
  void kill();
  bool running();
  /// SIGSTOP / SIGCONT: the process stays, the socket accepts, nothing is answered.
  void freeze();
  void thaw();
  /// freeze() now and thaw() after `duration` (from a helper thread).
  void pause(std::chrono::milliseconds duration);
  std::string log() const;

 private:
  RedisServerOptions options_;
  TempDir dir_;
  uint16_t port_;
  uint16_t tls_port_ = 0;
  std::unique_ptr<Process> process_;
  std::thread thawer_;
  bool frozen_ = false;
};

/// A primary, one replica and three sentinels (quorum 2, down-after 1000 ms) on free ports.
class RedisSentinelSet {
 public:
  /// With a password, the data servers require it (and the sentinels know it); the sentinels
  /// themselves have none, as is common.
  /// With `tls`, every server and sentinel also has a TLS port, replication and the sentinels'
  /// own connections use TLS, and the sentinels name the primary by its TLS port.
  explicit RedisSentinelSet(std::string password = {}, std::optional<RedisTls> tls = {});
  ~RedisSentinelSet();

  std::vector<std::string> sentinelAddresses() const;
  /// With tls: the sentinels' TLS ports.
  std::vector<std::string> sentinelTlsAddresses() const;
  std::vector<uint16_t> sentinelPorts() const { return sentinel_ports_; }
  std::string masterName() const { return "sticky"; }
  /// The server the sentinels name as primary now.
  RedisServer& primary();
  /// The port the sentinels name (the TLS port with tls).
  uint16_t primaryPort() const;
  /// Kills the primary and waits (up to `timeout`) until the sentinels name the replica.
  void failover(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  void startSentinel(size_t i);
  std::string password_;
  std::optional<RedisTls> tls_;
  std::vector<std::unique_ptr<RedisServer>> servers_;  // [0] primary, [1] replica at first
  TempDir dir_;
  std::vector<uint16_t> sentinel_ports_;
  std::vector<uint16_t> sentinel_tls_ports_;
  std::vector<std::unique_ptr<Process>> sentinels_;
};

}  // namespace sticky::test
