// The Redis client against a real redis-server: replies, pipelining from two threads, AUTH,
// a crash and a restart, a hung server, a demoted primary, pub/sub, stop(); and the pure parts
// (Address::parse, ClientOptions::validate).
#include "redis/client.h"

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <thread>

#include "common/log.h"
#include "proxy/redis/client_fixture.h"
#include "support/redis_server.h"

namespace sticky::proxy::redis {
namespace {

using namespace testing;
using sticky::test::RedisServer;
using sticky::test::RedisServerOptions;
using sticky::test::waitFor;

}  // namespace

TEST_CASE("redis client: commands, replies and batches") {
  RedisServer server;
  IoThread io;
  auto stats = std::make_shared<RedisStats>();
  Client client(io.io(), directOptions(server.address()), stats);
  std::atomic<uint64_t> connected_epoch{0};
  client.onConnected([&](uint64_t epoch) { connected_epoch = epoch; });
  client.start();
  // connected() turns true on the client's thread just before it calls onConnected.
  REQUIRE(waitFor([&] { return client.connected() && connected_epoch != 0; }, 10s));
  CHECK(connected_epoch == 1);
  CHECK(client.epoch() == 1);
  CHECK(client.primary() == server.address());

  CHECK(text(run(client, {"SET", "k", "v"})) == "OK");
  CHECK(text(run(client, {"GET", "k"})) == "v");
  CHECK(text(run(client, {"GET", "missing"})) == "(nil)");
  CommandResult error = run(client, {"INCR", "k"});
  REQUIRE(error.ok());  // an error reply is a value
  CHECK(error->isError());
  CHECK(server.command({"GET", "k"}).text == "v");

  std::promise<std::vector<CommandResult>> batch;
  client.executeBatch({{"SET", "a", "1"}, {"INCR", "a"}, {"GET", "a"}, {"INCR", "k"}},
                      [&](std::vector<CommandResult> r) { batch.set_value(std::move(r)); });
  std::vector<CommandResult> results = batch.get_future().get();
  REQUIRE(results.size() == 4);
  CHECK(text(results[0]) == "OK");
  CHECK(results[1]->integer == 2);
  CHECK(text(results[2]) == "2");
  CHECK(results[3]->isError());

  CHECK(stats->commands.load() == 8);
  CHECK(stats->latency_count.load() == 8);
  CHECK(stats->connects == 1);
  CHECK(stats->rejected == 0);
  client.stop();
  CHECK(!client.connected());
  CHECK(text(run(client, {"PING"})) == "failed: Disconnected");
}

TEST_CASE("redis client: pipelined commands from two threads all complete, in order per caller") {
  RedisServer server;
  IoThread io;
  Client client(io.io(), directOptions(server.address()), nullptr);
  client.start();
  REQUIRE(waitFor([&] { return client.connected(); }, 10s));

  constexpr int kPerThread = 3000;
  // Written on the io thread only; read after `completed` says all are in.
  std::vector<int64_t> replies[2];
  std::atomic<int> completed{0};
  std::atomic<int> failed{0};
  auto caller = [&](int t) {
    std::string key = "counter" + std::to_string(t);
    for (int i = 0; i < kPerThread; ++i) {
      client.execute({"INCR", key}, [&, t](CommandResult r) {
        if (r && r->type == RespType::Integer) {
          replies[t].push_back(r->integer);
        } else {
          failed++;
        }
        completed++;
      });
    }
  };
  std::thread a(caller, 0), b(caller, 1);
  a.join();
  b.join();
  REQUIRE(waitFor([&] { return completed == 2 * kPerThread; }, 30s));
  CHECK(failed == 0);
  for (auto& r : replies) {
    REQUIRE(r.size() == kPerThread);
    bool in_order = true;
    for (int i = 0; i < kPerThread; ++i) in_order = in_order && r[i] == i + 1;
    CHECK(in_order);
  }
}

TEST_CASE("redis client: AUTH with the right password, as the default user or an ACL user") {
  for (std::string username : {"", "sticky"}) {
    CAPTURE(username);
    RedisServer server(RedisServerOptions{.password = "s3cret", .username = username});
    IoThread io;
    ClientOptions options = directOptions(server.address());
    options.username = username;
    options.password = "s3cret";
    Client client(io.io(), options, nullptr);
    client.start();
    REQUIRE(waitFor([&] { return client.connected(); }, 10s));
    CHECK(text(run(client, {"SET", "k", "v"})) == "OK");
  }
}

TEST_CASE("redis client: a wrong password never connects and commands fail at once") {
  RedisServer server(RedisServerOptions{.password = "s3cret"});
  LogCapture log;
  IoThread io;
  auto stats = std::make_shared<RedisStats>();
  ClientOptions options = directOptions(server.address());
  options.password = "wrong";
  Client client(io.io(), options, stats);
  std::atomic<int> connects{0};
  client.onConnected([&](uint64_t) { connects++; });
  client.start();
  REQUIRE(waitFor([&] { return stats->connect_failures >= 2; }, 10s));
  CHECK(log.contains("redis auth failed"));
  CHECK(text(run(client, {"PING"})) == "failed: Disconnected");
  CHECK(stats->rejected == 1);
  CHECK(!client.connected());
  CHECK(connects == 0);
}

TEST_CASE("redis client: a crash fails pending commands, rejects new ones, then reconnects") {
  RedisServer server;
  IoThread io;
  auto stats = std::make_shared<RedisStats>();
  Client client(io.io(), directOptions(server.address()), stats);
  std::mutex mutex;
  std::vector<uint64_t> epochs;
  std::atomic<int> disconnects{0};
  client.onConnected([&](uint64_t epoch) {
    std::lock_guard lock(mutex);
    epochs.push_back(epoch);
  });
  client.onDisconnected([&] { disconnects++; });
  client.start();
  REQUIRE(waitFor([&] { return client.connected(); }, 10s));

  // A command the server will never answer: it is frozen, then killed.
  server.freeze();
  std::promise<CommandResult> pending;
  client.execute({"SET", "k", "v"}, [&](CommandResult r) { pending.set_value(std::move(r)); });
  server.kill();
  auto future = pending.get_future();
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  CHECK(text(future.get()) == "failed: Disconnected");
  REQUIRE(waitFor([&] { return !client.connected(); }, 10s));
  CHECK(disconnects == 1);
  CHECK(text(run(client, {"PING"})) == "failed: Disconnected");
  CHECK(stats->rejected >= 1);
  REQUIRE(waitFor([&] { return stats->connect_failures >= 1; }, 10s));  // it keeps trying

  server.start();
  REQUIRE(waitFor([&] { return client.connected(); }, 10s));
  CHECK(client.epoch() == 2);
  {
    std::lock_guard lock(mutex);
    CHECK(epochs == std::vector<uint64_t>{1, 2});
  }
  CHECK(text(run(client, {"PING"})) == "PONG");
  CHECK(stats->connects == 2);
}

TEST_CASE("redis client: a hung server times commands out, then the stall closes the connection") {
  RedisServer server;
  IoThread io;
  auto stats = std::make_shared<RedisStats>();
  ClientOptions options = directOptions(server.address());
  options.command_timeout = 200ms;
  options.stall_timeout = 1500ms;
  Client client(io.io(), options, stats);
  client.start();
  REQUIRE(waitFor([&] { return client.connected(); }, 10s));

  server.freeze();
  CHECK(text(run(client, {"PING"})) == "failed: Timeout");
  CHECK(stats->timeouts == 1);
  REQUIRE(waitFor([&] { return !client.connected(); }, 10s));
  CHECK(text(run(client, {"PING"})) == "failed: Disconnected");

  server.thaw();
  REQUIRE(waitFor([&] { return client.connected(); }, 10s));
  CHECK(client.epoch() == 2);
  CHECK(text(run(client, {"PING"})) == "PONG");
}

TEST_CASE("redis client: a late reply is dropped, not given to the next command") {
  RedisServer server;
  IoThread io;
  ClientOptions options = directOptions(server.address());
  options.command_timeout = 200ms;
  options.stall_timeout = 10s;
  Client client(io.io(), options, nullptr);
  client.start();
  REQUIRE(waitFor([&] { return client.connected(); }, 10s));

  server.pause(800ms);
  CHECK(text(run(client, {"ECHO", "first"})) == "failed: Timeout");
  // The server answers "first" when it wakes; the next command must get its own reply.
  REQUIRE(waitFor([&] { return server.command({"PING"}).text == "PONG"; }, 10s));
  CHECK(text(run(client, {"ECHO", "second"})) == "second");
  CHECK(client.epoch() == 1);
}

TEST_CASE("redis client: a demoted primary (READONLY) is left - a replica is refused") {
  RedisServer server;
  RedisServer other;
  LogCapture log;
  IoThread io;
  Client client(io.io(), directOptions(server.address()), nullptr);
  client.start();
  REQUIRE(waitFor([&] { return client.connected(); }, 10s));

  server.command({"REPLICAOF", "127.0.0.1", std::to_string(other.port())});
  CommandResult write = run(client, {"SET", "k", "v"});
  REQUIRE(write.ok());
  CHECK(write->isError());
  CHECK(write->text.rfind("READONLY", 0) == 0);
  REQUIRE(waitFor([&] { return !client.connected(); }, 10s));
  // Reconnecting finds a replica: ROLE refuses it.
  CHECK(waitFor([&] { return log.contains("not the primary"); }, 10s));
  CHECK(!client.connected());

  server.command({"REPLICAOF", "NO", "ONE"});
  REQUIRE(waitFor([&] { return client.connected(); }, 10s));
  CHECK(client.epoch() == 2);
  CHECK(text(run(client, {"SET", "k", "v"})) == "OK");
}

TEST_CASE("redis client: pub/sub delivers messages and resubscribes after a restart") {
  RedisServer server;
  IoThread io;
  auto stats = std::make_shared<RedisStats>();
  ClientOptions options = directOptions(server.address());
  options.channels = {"sticky:a", "sticky:b"};
  Client client(io.io(), options, stats);
  std::atomic<int> subscribed{0};
  std::mutex mutex;
  std::vector<std::string> messages;
  client.onSubscribed([&] { subscribed++; });
  client.onMessage([&](std::string_view channel, std::string_view payload) {
    std::lock_guard lock(mutex);
    messages.push_back(std::string(channel) + "=" + std::string(payload));
  });
  auto received = [&](const std::string& m) {
    std::lock_guard lock(mutex);
    return std::find(messages.begin(), messages.end(), m) != messages.end();
  };
  client.start();
  REQUIRE(waitFor([&] { return subscribed == 1 && client.connected(); }, 10s));

  CHECK(run(client, {"PUBLISH", "sticky:a", "one"})->integer == 1);
  CHECK(server.command({"PUBLISH", "sticky:b", "two"}).integer == 1);
  CHECK(waitFor([&] { return received("sticky:a=one") && received("sticky:b=two"); }, 10s));
  CHECK(stats->messages == 2);

  server.kill();
  server.start();
  REQUIRE(waitFor([&] { return subscribed == 2 && client.connected(); }, 10s));
  CHECK(run(client, {"PUBLISH", "sticky:b", "three"})->integer == 1);
  CHECK(waitFor([&] { return received("sticky:b=three"); }, 10s));
  CHECK(stats->messages == 3);
}

TEST_CASE("redis client: a hung server is noticed on the pub/sub connection too") {
  RedisServer server;
  IoThread io;
  ClientOptions options = directOptions(server.address());
  options.stall_timeout = 1000ms;
  options.channels = {"sticky:a"};
  LogCapture log;
  Client client(io.io(), options, nullptr);
  std::atomic<int> subscribed{0};
  client.onSubscribed([&] { subscribed++; });
  client.start();
  REQUIRE(waitFor([&] { return subscribed == 1; }, 10s));
  server.freeze();
  CHECK(waitFor([&] { return log.contains("answered nothing on the pub/sub connection"); }, 10s));
  server.thaw();
  CHECK(waitFor([&] { return subscribed == 2; }, 10s));
}

TEST_CASE(
    "redis client: stop fails pending commands - destroying it with handlers queued is safe") {
  RedisServer server;
  IoThread io;
  std::atomic<int> disconnected{0};
  std::atomic<int> completions{0};
  auto stats = std::make_shared<RedisStats>();
  {
    Client client(io.io(), directOptions(server.address()), stats);
    client.start();
    REQUIRE(waitFor([&] { return client.connected(); }, 10s));
    server.freeze();
    for (int i = 0; i < 10; ++i) {
      client.execute({"PING"}, [&](CommandResult r) {
        if (!r && r.error().code == "Disconnected") disconnected++;
        completions++;
      });
    }
    REQUIRE(waitFor([&] { return stats->commands == 10; }, 10s));
    client.stop();
    client.stop();  // idempotent
    // Queued after stop (and possibly run after the Client is gone).
    for (int i = 0; i < 100; ++i) {
      client.execute({"PING"}, [&](CommandResult r) {
        if (!r && r.error().code == "Disconnected") disconnected++;
        completions++;
      });
    }
  }
  CHECK(waitFor([&] { return completions == 110; }, 10s));
  CHECK(disconnected == 110);
  server.thaw();

  // Destroyed without stop() while it is still connecting.
  for (int i = 0; i < 5; ++i) {
    Client client(io.io(), directOptions(server.address()), nullptr);
    client.start();
  }
  // The abandoned connects finish on the io thread (the close the destructor queued runs
  // there): let them, so the io_context is not torn down with their work in flight.
  for (int round = 0; round < 10; ++round) {
    std::promise<void> ran;
    boost::asio::post(io.io(), [&ran] { ran.set_value(); });
    REQUIRE(ran.get_future().wait_for(10s) == std::future_status::ready);
    std::this_thread::sleep_for(10ms);
  }
}

TEST_CASE("redis client: Address::parse") {
  auto parsed = [](std::string_view text) { return Address::parse(text).value().toString(); };
  CHECK(parsed("redis:6380") == "redis:6380");
  CHECK(parsed("redis") == "redis:6379");
  CHECK(Address::parse("sentinel", 26379).value().port == 26379);
  CHECK(parsed("[::1]:7000") == "[::1]:7000");
  CHECK(parsed("[::1]") == "[::1]:6379");
  CHECK(parsed("::1") == "[::1]:6379");
  CHECK(Address::parse("[::1]:7000").value().host == "::1");

  auto error = [](std::string_view text) { return Address::parse(text).error().message; };
  CHECK(error("redis:x") ==
        "the port in the Redis address 'redis:x' is not a number from 1 to 65535");
  CHECK(error("redis:70000").find("not a number from 1 to 65535") != std::string::npos);
  CHECK(error("redis:0").find("not a number from 1 to 65535") != std::string::npos);
  CHECK(error("redis:").find("not a number from 1 to 65535") != std::string::npos);
  CHECK(error(":6379") == "the Redis address ':6379' has no host; give host:port");
  CHECK(error("") == "a Redis address is empty; give host:port");
  CHECK(error("[::1").find("without ']'") != std::string::npos);
  CHECK(error("[::1]x").find("not :port") != std::string::npos);
}

TEST_CASE("redis client: ClientOptions::validate") {
  ClientOptions direct;
  direct.addresses = {Address{"redis", 6379}};
  CHECK(direct.validate().ok());

  ClientOptions sentinel;
  sentinel.sentinels = {Address{"s1", 26379}};
  sentinel.master_name = "mymaster";
  CHECK(sentinel.validate().ok());

  auto message = [](const ClientOptions& o) { return o.validate().error().message; };
  CHECK(message(ClientOptions{}) ==
        "Redis client options: no Redis address is given: set addresses (a primary) or "
        "sentinels.");
  ClientOptions both = direct;
  both.sentinels = sentinel.sentinels;
  both.master_name = "mymaster";
  CHECK(message(both).find("both addresses and sentinels are given") != std::string::npos);
  ClientOptions nameless = sentinel;
  nameless.master_name.clear();
  CHECK(message(nameless).find("sentinel mode needs master_name") != std::string::npos);
  ClientOptions zero = direct;
  zero.command_timeout = 0ms;
  CHECK(message(zero) == "Redis client options: command_timeout must be more than 0 ms.");
  ClientOptions backwards = direct;
  backwards.reconnect_min = 10s;
  CHECK(message(backwards).find("reconnect_max must not be less than reconnect_min") !=
        std::string::npos);
  ClientOptions two = direct;
  two.connect_timeout = -1ms;
  two.channels = {""};
  CHECK(message(two) ==
        "Redis client options: connect_timeout must be more than 0 ms; a pub/sub channel name "
        "is empty.");
  CHECK(two.validate().error().code == "Invalid");
}

}  // namespace sticky::proxy::redis
