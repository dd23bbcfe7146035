// Finding the primary through Sentinel, against three real redis-sentinel processes watching a
// primary and a replica; and the pure parsing of ROLE and get-master-addr-by-name replies.
#include "redis/sentinel.h"

#include <doctest/doctest.h>

#include "proxy/redis/client_fixture.h"
#include "support/redis_server.h"

namespace sticky::proxy::redis {
namespace {

using namespace testing;
using sticky::test::RedisSentinelSet;
using sticky::test::waitFor;

ClientOptions sentinelOptions(const RedisSentinelSet& set) {
  ClientOptions options = directOptions("unused:1");
  options.addresses.clear();
  for (const std::string& a : set.sentinelAddresses()) {
    options.sentinels.push_back(Address::parse(a).value());
  }
  options.master_name = set.masterName();
  return options;
}

RespValue value(RespType type, std::string text = {}) {
  RespValue v;
  v.type = type;
  v.text = std::move(text);
  return v;
}

RespValue bulk(std::string text) {
  return value(RespType::BulkString, std::move(text));
}

RespValue array(std::vector<RespValue> elements) {
  RespValue v = value(RespType::Array);
  v.elements = std::move(elements);
  return v;
}

}  // namespace

TEST_CASE("redis sentinel: parsing ROLE and get-master-addr-by-name") {
  Address at{"10.0.0.1", 6379};
  CHECK(checkRole(array({bulk("master"), value(RespType::Integer)}), at).ok());
  Result<Ok> replica = checkRole(array({bulk("slave"), bulk("10.0.0.2")}), at);
  REQUIRE(!replica.ok());
  CHECK(replica.error().code == "NotPrimary");
  CHECK(replica.error().message == "10.0.0.1:6379 is a slave, not the primary");
  CHECK(!checkRole(value(RespType::Error, "NOPERM"), at).ok());
  CHECK(!checkRole(bulk("master"), at).ok());

  Result<Address> primary = parseMasterAddr(array({bulk("10.0.0.9"), bulk("6380")}), "m");
  REQUIRE(primary.ok());
  CHECK(primary->toString() == "10.0.0.9:6380");
  CHECK(parseMasterAddr(RespValue{}, "m").error().message == "it monitors no primary named 'm'");
  CHECK(parseMasterAddr(array({bulk("h"), bulk("x")}), "m").error().code == "Protocol");
  CHECK(parseMasterAddr(array({bulk("h")}), "m").error().code == "Protocol");
}

TEST_CASE("redis sentinel: the client finds the primary and follows a failover") {
  RedisSentinelSet set;
  IoThread io;
  ClientOptions options = sentinelOptions(set);
  // The first sentinel is not there: the client asks the next one.
  options.sentinels.insert(options.sentinels.begin(),
                           Address{"127.0.0.1", static_cast<uint16_t>(sticky::test::freePort())});
  options.channels = {"sticky:x"};
  Client client(io.io(), options, nullptr);
  std::atomic<int> subscribed{0};
  client.onSubscribed([&] { subscribed++; });
  client.start();
  REQUIRE(waitFor([&] { return client.connected() && subscribed == 1; }, 20s));
  std::string first = set.primary().address();
  CHECK(client.primary() == first);
  CHECK(text(run(client, {"SET", "k", "v"})) == "OK");

  set.failover();
  std::string promoted = set.primary().address();
  REQUIRE(promoted != first);
  REQUIRE(waitFor([&] { return client.epoch() >= 2 && client.connected(); }, 30s));
  CHECK(client.primary() == promoted);
  CHECK(waitFor([&] { return text(run(client, {"SET", "k", "w"})) == "OK"; }, 20s));
  CHECK(set.primary().command({"GET", "k"}).text == "w");
  CHECK(waitFor([&] { return subscribed == 2; }, 20s));
}

TEST_CASE("redis sentinel: password-protected servers behind sentinels without a password") {
  RedisSentinelSet set("s3cret");
  IoThread io;
  ClientOptions options = sentinelOptions(set);
  options.password = "s3cret";  // also tried on the sentinels, which have none
  Client client(io.io(), options, nullptr);
  client.start();
  REQUIRE(waitFor([&] { return client.connected(); }, 20s));
  CHECK(client.primary() == set.primary().address());
  CHECK(text(run(client, {"SET", "k", "v"})) == "OK");
}

}  // namespace sticky::proxy::redis
