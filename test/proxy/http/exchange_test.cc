#include "http/exchange.h"

#include <doctest/doctest.h>

#include <string>

namespace sticky::proxy {
namespace {

using namespace std::chrono_literals;
namespace http = boost::beast::http;

const TimePoint kT0 = TimePoint{} + 1000h;

// Route shop/chat: header Client-ID, endpoints chat-0..chat-(n-1).
std::shared_ptr<const Router> router(int endpoints, OnMissingKey on_missing) {
  ProxyConfig c;
  c.version = 1;
  RouteConfig r;
  r.name = "shop/chat";
  r.header = "Client-ID";
  r.on_missing_key = on_missing;
  for (int i = 0; i < endpoints; ++i)
    r.endpoints.push_back({"chat-" + std::to_string(i), "127.0.0." + std::to_string(i + 2),
                           static_cast<uint16_t>(8080 + i), EndpointState::Active});
  c.routes.push_back(r);
  auto built = Router::build(std::move(c), nullptr, kT0);
  REQUIRE(built.ok());
  return *built;
}

TEST_CASE("the routing step is ready at once and carries Route::decide's answer") {
  auto r = router(3, OnMissingKey::Balance);
  const Route& route = *r->findRoute("shop/chat");
  auto step = RoutingStep::decide(route, "client-1", kT0);
  CHECK(step.ready());
  CHECK((step.decision().verdict == Verdict::Forward));
  REQUIRE(step.decision().endpoint != nullptr);
  CHECK(step.decision().endpoint == route.decide("client-1", kT0).endpoint);

  // Failing over moves the session to another endpoint, and says where it came from.
  const Endpoint& first = *step.decision().endpoint;
  auto next = RoutingStep::failover(route, "client-1", first, kT0);
  CHECK(next.ready());
  REQUIRE(next.decision().endpoint != nullptr);
  CHECK(next.decision().endpoint != &first);
  CHECK(next.decision().moved_from == first.config().name);
}

TEST_CASE("a decision that places the request nowhere becomes the matching local reply") {
  auto missing = router(2, OnMissingKey::Reject);
  auto rejected = RoutingStep::decide(*missing->findRoute("shop/chat"), std::nullopt, kT0);
  REQUIRE((rejected.decision().verdict == Verdict::Reject));
  auto reply = unplacedReply(rejected.decision());
  CHECK((reply.reason == LocalReason::MissingKey));
  CHECK(reply.status() == http::status::bad_request);
  CHECK(reply.sentence == rejected.decision().reason);

  RouteDecision nowhere;
  nowhere.status = 503;
  nowhere.reason = "no active endpoint for this route";
  auto unplaced = unplacedReply(nowhere);
  CHECK((unplaced.reason == LocalReason::NoEndpoint));
  CHECK(unplaced.status() == http::status::service_unavailable);
  CHECK(unplaced.sentence == "no active endpoint for this route");

  RouteDecision silent;  // no sentence from routing: the table's
  CHECK(unplacedReply(silent).sentence == "no endpoint can take this request");
}

}  // namespace
}  // namespace sticky::proxy
