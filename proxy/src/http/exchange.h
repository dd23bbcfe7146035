#pragma once
// The request's side of the forwarding path: decide where the request goes, read the first piece
// of its body, send it to the endpoint on a pooled or fresh connection, wait for the response
// head, and fail over while that is still possible; then hand the response to the relay
// (response_relay.h).
//
//   decide ──Reject──────────────────────────────────────────────────> local reply
//     │Forward
//   first body piece ──client broke it──> 408/400 (or nothing), close
//     │
//   exchange(endpoint) ──Response──> relayResponse
//     │ Stale (pooled conn closed, nothing sent yet) ──> same endpoint, fresh connection
//     │ Refused / ConnectTimeout, body in hand, < kMaxFailovers ──> failover step ─> exchange
//     │ otherwise ──> 502/504
//
// Routing is a step the coroutine awaits (RoutingStep): with a local table Route::decide answers
// at once, so the step is ready and costs nothing; with a shared table a miss suspends the
// coroutine for the store's round trip (session_store.h), and this code stays as it is.

#include <optional>
#include <string_view>
#include <utility>

#include <boost/asio/awaitable.hpp>

#include "http/downstream.h"
#include "routing/router.h"

namespace sticky::proxy {

/// A routing decision as a step of the request coroutine:
///
///   auto step = RoutingStep::decide(route, key, now);
///   if (!step.ready()) co_await step.wait();
///   RouteDecision& decision = step.decision();
///
/// Ready at once for a local table, and for a hit on a shared table's local cache (no frame, no
/// post). A miss on a shared table is a Claim: wait() asks the store (one round trip, or the
/// store's timeout) and resumes the coroutine on its own executor with the settled decision.
class RoutingStep {
 public:
  static RoutingStep decide(const Route& route, std::optional<std::string_view> key,
                            TimePoint now) {
    return RoutingStep(route, key, route.decide(key, now));
  }
  static RoutingStep failover(const Route& route, std::optional<std::string_view> key,
                              const Endpoint& failed, TimePoint now) {
    return RoutingStep(route, key, route.failover(key, failed, now));
  }

  bool ready() const { return decision_.verdict != Verdict::Claim; }
  /// Completes a step that is not ready(); the decision is there afterwards.
  boost::asio::awaitable<void> wait();
  RouteDecision& decision() { return decision_; }

 private:
  RoutingStep(const Route& route, std::optional<std::string_view> key, RouteDecision decision)
      : route_(&route), key_(key), decision_(std::move(decision)) {}
  const Route* route_;
  std::optional<std::string_view> key_;
  RouteDecision decision_;
};

/// The local reply for a decision that placed the request nowhere (Reject, or no endpoint):
/// Route::decide's own sentence, MissingKey for its 400, NoEndpoint otherwise.
LocalReply unplacedReply(const RouteDecision& decision);

/// Forwards the request `ds` holds (head parsed, route matched, ds.key set) to an endpoint of
/// `route` and relays the answer. True if the client connection stays open for another request.
boost::asio::awaitable<bool> forward(Downstream& ds, const Router& router, const Route& route);

}  // namespace sticky::proxy
