#pragma once
// Placement of new session keys onto endpoints: pure functions over the eligible endpoints
// (Active and not marked down; the caller filters). Stable across processes, so replicas that
// use ConsistentHash agree without coordinating.

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "config/proxy_config.h"
#include "routing/stick_table.h"

namespace sticky::proxy {

/// Fast, stable 64-bit hash of a session key.
uint64_t hashKey(std::string_view key);

/// Stable identity of an endpoint: a hash of (name, address, port); never 0.
EndpointId endpointId(std::string_view name, std::string_view address, uint16_t port);
inline EndpointId endpointId(const EndpointConfig& e) {
  return endpointId(e.name, e.address, e.port);
}

/// Rendezvous (highest random weight) score of `endpoint` for a key: mix(key_hash ^ endpoint).
uint64_t rendezvousScore(uint64_t key_hash, EndpointId endpoint);

/// The eligible endpoint with the highest rendezvous score. Removing an endpoint moves only the
/// keys it had; adding one takes ~1/n of the keys from the others.
std::optional<EndpointId> pickRendezvous(uint64_t key_hash, std::span<const EndpointId> eligible);

/// The eligible endpoint with the least load; ties go to the highest rendezvous score, so equal
/// endpoints split new keys evenly and deterministically. An endpoint's load is its live
/// sessions in `table`, plus, when `peer_sessions` is not empty, `peer_sessions[i]` for
/// `eligible[i]`: the sessions other replicas sharing the table last reported for it
/// (docs/shared-table.md, "LeastSessions across replicas"). A `peer_sessions` whose size is not
/// eligible's is ignored.
///   table {a: 3, b: 5}, peers {}      -> a      table {a: 3, b: 5}, peers {a: 4, b: 0} -> b
std::optional<EndpointId> pickLeastSessions(uint64_t key_hash, std::span<const EndpointId> eligible,
                                            const StickTable& table,
                                            std::span<const uint64_t> peer_sessions = {});

/// The next eligible endpoint in turn (`counter` is the route's, shared by its requests).
std::optional<EndpointId> pickRoundRobin(std::atomic<uint64_t>& counter,
                                         std::span<const EndpointId> eligible);

/// Dispatches on the route's policy. `key_hash` is hashKey(key); `peer_sessions` is for
/// LeastSessions only (see pickLeastSessions).
std::optional<EndpointId> pick(Placement policy, uint64_t key_hash,
                               std::span<const EndpointId> eligible, const StickTable& table,
                               std::atomic<uint64_t>& round_robin,
                               std::span<const uint64_t> peer_sessions = {});

}  // namespace sticky::proxy
