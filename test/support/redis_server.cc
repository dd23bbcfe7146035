#include "support/redis_server.h"

#include <signal.h>

#include <boost/asio.hpp>
#include <stdexcept>

namespace sticky::test {

namespace asio = boost::asio;
using proxy::redis::RespValue;

namespace {

// A blocking exchange on one socket, bounded by a deadline (run_for on a private io_context).
class BlockingConnection {
 public:
  BlockingConnection(uint16_t port, std::chrono::milliseconds timeout)
      : socket_(io_), deadline_(std::chrono::steady_clock::now() + timeout) {
    asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    boost::system::error_code result = asio::error::would_block;
    socket_.async_connect(endpoint, [&](boost::system::error_code ec) { result = ec; });
    run(result);
    if (result) {
      throw std::runtime_error("redis at port " + std::to_string(port) + ": " + result.message());
    }
  }

  RespValue call(const std::vector<std::string>& command) {
    std::string out;
    proxy::redis::encodeCommand(out, command);
    boost::system::error_code result = asio::error::would_block;
    asio::async_write(socket_, asio::buffer(out),
                      [&](boost::system::error_code ec, size_t) { result = ec; });
    run(result);
    if (result) throw std::runtime_error("redis write failed: " + result.message());
    while (true) {
      auto parse = proxy::redis::parseResp(in_);
      if (parse.status == proxy::redis::RespParse::Status::Done) {
        in_.erase(0, parse.consumed);
        return parse.value;
      }
      if (parse.status == proxy::redis::RespParse::Status::Invalid) {
        throw std::runtime_error("redis sent invalid RESP: " + parse.error);
      }
      char buf[4096];
      size_t got = 0;
      result = asio::error::would_block;
      socket_.async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, size_t n) {
        result = ec;
        got = n;
      });
      run(result);
      if (result) throw std::runtime_error("redis read failed: " + result.message());
      in_.append(buf, got);
    }
  }

 private:
  void run(boost::system::error_code& result) {
    io_.restart();
    while (result == asio::error::would_block) {
      auto left = deadline_ - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero() || io_.run_one_for(left) == 0) {
        if (result != asio::error::would_block) break;
        boost::system::error_code ignored;
        socket_.close(ignored);
        io_.restart();
        io_.run();  // the aborted operation completes
        result = asio::error::timed_out;
      }
    }
  }

  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::chrono::steady_clock::time_point deadline_;
  std::string in_;
};

}  // namespace

RespValue redisCommand(uint16_t port, const std::vector<std::string>& command,
                       const std::string& username, const std::string& password,
                       std::chrono::milliseconds timeout) {
  BlockingConnection conn(port, timeout);
  if (!password.empty()) {
    RespValue auth =
        username.empty() ? conn.call({"AUTH", password}) : conn.call({"AUTH", username, password});
    if (auth.isError()) throw std::runtime_error("redis AUTH failed: " + auth.text);
  }
  return conn.call(command);
}

// ---- RedisServer ------------------------------------------------------------------------------

RedisServer::RedisServer(RedisServerOptions options)
    : options_(std::move(options)), port_(static_cast<uint16_t>(freePort())) {
  while (options_.tls && (tls_port_ == 0 || tls_port_ == port_))
    tls_port_ = static_cast<uint16_t>(freePort());
  start();
}

RedisServer::~RedisServer() {
  if (thawer_.joinable()) thawer_.join();
  thaw();
  if (process_) process_->stop(std::chrono::seconds(2));
}

RespValue RedisServer::command(const std::vector<std::string>& command) const {
  return redisCommand(port_, command, options_.username, options_.password);
}

void RedisServer::start() {
  if (process_ && process_->running()) return;
  std::vector<std::string> argv = {"/usr/bin/redis-server",
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   dir_.path()};
  if (!options_.password.empty()) {
    if (options_.username.empty()) {
      argv.insert(argv.end(), {"--requirepass", options_.password});
    } else {
      // Each word its own argument: redis-server quotes every argument of an option.
      argv.insert(argv.end(), {"--user", options_.username, "on", ">" + options_.password, "~*",
                               "&*", "+@all", "--user", "default", "off"});
    }
  }
  if (options_.replica_of) {
    argv.insert(argv.end(), {"--replicaof", "127.0.0.1", std::to_string(*options_.replica_of)});
    // A replica of a password-protected primary needs to authenticate to it.
    if (!options_.password.empty()) {
      argv.insert(argv.end(), {"--masterauth", options_.password});
      if (!options_.username.empty()) argv.insert(argv.end(), {"--masteruser", options_.username});
    }
  }
  if (const auto& tls = options_.tls) {
    argv.insert(argv.end(), {"--tls-port", std::to_string(tls_port_), "--tls-cert-file",
                             tls->cert_file, "--tls-key-file", tls->key_file, "--tls-ca-cert-file",
                             tls->ca_file, "--tls-auth-clients", tls->auth_clients ? "yes" : "no"});
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  process_ = std::make_unique<Process>(argv, dir_.file("redis.log"));
  bool up = waitFor(
      [&] {
        try {
          return command({"PING"}).text == "PONG";
        } catch (const std::exception&) {
          return false;
        }
      },
      std::chrono::seconds(10), std::chrono::milliseconds(20));
  if (!up)
    throw std::runtime_error("redis-server did not start on port " + address() + ": " + log());
}

void RedisServer::stop() {
  thaw();
  if (process_) process_->stop(std::chrono::seconds(5));
}

void RedisServer::kill() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(5));
  frozen_ = false;
}

bool RedisServer::running() {
  return process_ && process_->running();
}

void RedisServer::freeze() {
  if (!process_) return;
  process_->signal(SIGSTOP);
  frozen_ = true;
}

void RedisServer::thaw() {
  if (!process_ || !frozen_) return;
  process_->signal(SIGCONT);
  frozen_ = false;
}

void RedisServer::pause(std::chrono::milliseconds duration) {
  if (thawer_.joinable()) thawer_.join();
  freeze();
  int pid = process_->pid();
  thawer_ = std::thread([pid, duration] {
    std::this_thread::sleep_for(duration);
    ::kill(pid, SIGCONT);
  });
  frozen_ = false;  // the helper thread thaws it
}

std::string RedisServer::log() const {
  return readFile(dir_.file("redis.log"));
}

// ---- RedisSentinelSet -------------------------------------------------------------------------

RedisSentinelSet::RedisSentinelSet(std::string password, std::optional<RedisTls> tls)
    : password_(std::move(password)), tls_(std::move(tls)) {
  servers_.push_back(
      std::make_unique<RedisServer>(RedisServerOptions{.password = password_, .tls = tls_}));
  // With TLS the replica replicates over TLS, and so announces its TLS port.
  servers_.push_back(std::make_unique<RedisServer>(
      RedisServerOptions{.password = password_,
                         .replica_of = tls_ ? servers_[0]->tlsPort() : servers_[0]->port(),
                         .extra_args = tls_ ? std::vector<std::string>{"--tls-replication", "yes"}
                                            : std::vector<std::string>{},
                         .tls = tls_}));
  for (size_t i = 0; i < 3; ++i) {
    sentinel_ports_.push_back(static_cast<uint16_t>(freePort()));
    if (tls_) sentinel_tls_ports_.push_back(static_cast<uint16_t>(freePort()));
    startSentinel(i);
  }
  // Failover needs the sentinels to know each other and the replica (found through the
  // primary's hello channel, every 2 s) and the replica in sync. 60 s: under the sanitizers on
  // a loaded 2-core machine, a TLS replica's first sync alone can take many seconds.
  std::string waiting_for;
  bool ready = waitFor(
      [&] {
        try {
          for (uint16_t port : sentinel_ports_) {
            waiting_for = "sentinel on port " + std::to_string(port) + " to see the other two";
            if (redisCommand(port, {"SENTINEL", "sentinels", masterName()}).elements.size() < 2)
              return false;
            waiting_for = "sentinel on port " + std::to_string(port) + " to see the replica";
            if (redisCommand(port, {"SENTINEL", "replicas", masterName()}).elements.empty())
              return false;
          }
          waiting_for = "the replica's link to the primary";
          RespValue info = servers_[1]->command({"INFO", "replication"});
          return info.text.find("master_link_status:up") != std::string::npos;
        } catch (const std::exception& e) {
          waiting_for += std::string(" (") + e.what() + ")";
          return false;
        }
      },
      std::chrono::seconds(60), std::chrono::milliseconds(100));
  if (!ready) {
    throw std::runtime_error("the sentinels were not ready in 60 s; still waiting for " +
                             waiting_for);
  }
}

RedisSentinelSet::~RedisSentinelSet() {
  sentinels_.clear();
  servers_.clear();
}

void RedisSentinelSet::startSentinel(size_t i) {
  std::string conf = dir_.file("sentinel-" + std::to_string(i) + ".conf");
  std::string name = masterName();
  // With TLS the sentinels monitor the primary's TLS port and talk TLS to the servers and to
  // each other (tls-replication), announcing their TLS ports.
  std::string tls_conf;
  if (tls_) {
    tls_conf = "tls-port " + std::to_string(sentinel_tls_ports_[i]) + "\ntls-cert-file " +
               tls_->cert_file + "\ntls-key-file " + tls_->key_file + "\ntls-ca-cert-file " +
               tls_->ca_file + "\ntls-replication yes\ntls-auth-clients no\n";
  }
  uint16_t monitored = tls_ ? servers_[0]->tlsPort() : servers_[0]->port();
  writeFile(conf,
            "port " + std::to_string(sentinel_ports_[i]) + "\nbind 127.0.0.1\ndir " + dir_.path() +
                "\n" + tls_conf + "sentinel monitor " + name + " 127.0.0.1 " +
                std::to_string(monitored) + " 2\nsentinel down-after-milliseconds " + name +
                " 1000\nsentinel failover-timeout " + name + " 5000\nsentinel parallel-syncs " +
                name + " 1\n" +
                (password_.empty() ? "" : "sentinel auth-pass " + name + " " + password_ + "\n"));
  sentinels_.push_back(
      std::make_unique<Process>(std::vector<std::string>{"/usr/bin/redis-sentinel", conf},
                                dir_.file("sentinel-" + std::to_string(i) + ".log")));
}

std::vector<std::string> RedisSentinelSet::sentinelAddresses() const {
  std::vector<std::string> out;
  for (uint16_t port : sentinel_ports_) out.push_back("127.0.0.1:" + std::to_string(port));
  return out;
}

std::vector<std::string> RedisSentinelSet::sentinelTlsAddresses() const {
  std::vector<std::string> out;
  for (uint16_t port : sentinel_tls_ports_) out.push_back("127.0.0.1:" + std::to_string(port));
  return out;
}

uint16_t RedisSentinelSet::primaryPort() const {
  for (uint16_t port : sentinel_ports_) {
    try {
      RespValue reply = redisCommand(port, {"SENTINEL", "get-master-addr-by-name", masterName()});
      if (reply.elements.size() == 2)
        return static_cast<uint16_t>(std::stoi(reply.elements[1].text));
    } catch (const std::exception&) {
    }
  }
  throw std::runtime_error("no sentinel names a primary");
}

RedisServer& RedisSentinelSet::primary() {
  uint16_t port = primaryPort();
  for (auto& server : servers_) {
    if (server->port() == port || (tls_ && server->tlsPort() == port)) return *server;
  }
  throw std::runtime_error("the sentinels name an unknown primary");
}

void RedisSentinelSet::failover(std::chrono::milliseconds timeout) {
  uint16_t old_port = primaryPort();
  primary().kill();
  bool promoted = waitFor(
      [&] {
        try {
          for (uint16_t port : sentinel_ports_) {
            RespValue reply =
                redisCommand(port, {"SENTINEL", "get-master-addr-by-name", masterName()});
            if (reply.elements.size() != 2 || std::stoi(reply.elements[1].text) == old_port)
              return false;
          }
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      timeout, std::chrono::milliseconds(100));
  if (!promoted) throw std::runtime_error("the sentinels did not promote the replica in time");
}

}  // namespace sticky::test
