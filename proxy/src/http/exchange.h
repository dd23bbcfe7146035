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
// Routing is a step the coroutine awaits (RoutingStep): today Route::decide answers at once, so
// the step is ready and costs nothing; a stick table behind a network round trip will make it
// suspend instead, and this code stays as it is.

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
/// Ready at once while Route::decide and Route::failover are synchronous (no frame, no post).
class RoutingStep {
 public:
  static RoutingStep decide(const Route& route, std::optional<std::string_view> key,
                            TimePoint now) {
    return RoutingStep(route.decide(key, now));
  }
  static RoutingStep failover(const Route& route, std::optional<std::string_view> key,
                              const Endpoint& failed, TimePoint now) {
    return RoutingStep(route.failover(key, failed, now));
  }

  bool ready() const { return true; }
  /// Completes a step that is not ready(); the decision is there afterwards.
  boost::asio::awaitable<void> wait();
  RouteDecision& decision() { return decision_; }

 private:
  explicit RoutingStep(RouteDecision decision) : decision_(std::move(decision)) {}
  RouteDecision decision_;
};

/// The local reply for a decision that placed the request nowhere (Reject, or no endpoint):
/// Route::decide's own sentence, MissingKey for its 400, NoEndpoint otherwise.
LocalReply unplacedReply(const RouteDecision& decision);

/// Forwards the request `ds` holds (head parsed, route matched, ds.key set) to an endpoint of
/// `route` and relays the answer. True if the client connection stays open for another request.
boost::asio::awaitable<bool> forward(Downstream& ds, const Router& router, const Route& route);

}  // namespace sticky::proxy
