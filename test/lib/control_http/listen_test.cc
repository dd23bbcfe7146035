#include "control_http/listen.h"

#include <doctest/doctest.h>

namespace sticky::control {
namespace {

TEST_CASE("parseListenAddress takes HOST:PORT with an address, [v6] or a host name") {
  auto v4 = parseListenAddress("127.0.0.1:8081");
  REQUIRE(v4.ok());
  CHECK(v4->address().to_string() == "127.0.0.1");
  CHECK(v4->port() == 8081);
  auto any = parseListenAddress("0.0.0.0:0");
  REQUIRE(any.ok());
  CHECK(any->port() == 0);
  auto v6 = parseListenAddress("[::1]:9090");
  REQUIRE(v6.ok());
  CHECK(v6->address().is_v6());
  auto local = parseListenAddress("localhost:80");
  REQUIRE(local.ok());
  CHECK(local->address().is_loopback());

  for (const char* bad : {"8081", ":8081", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:80x"}) {
    INFO(bad);
    auto r = parseListenAddress(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.rfind("invalid listen address '" + std::string(bad) + "': ", 0) == 0);
  }
}

}  // namespace
}  // namespace sticky::control
