#include "routing/placement.h"

#include <string>

#include "routing/hash.h"

namespace sticky::proxy {

uint64_t hashKey(std::string_view key) {
  return hash::bytes(key);
}

EndpointId endpointId(std::string_view name, std::string_view address, uint16_t port) {
  std::string buf;
  buf.reserve(name.size() + address.size() + 4);
  buf.append(name);
  buf.push_back('\0');
  buf.append(address);
  buf.push_back('\0');
  buf.push_back(static_cast<char>(port >> 8));
  buf.push_back(static_cast<char>(port & 0xff));
  EndpointId id = hash::bytes(buf, /*seed=*/0x5e55'10e1'd000'0001ULL);
  return id == 0 ? 1 : id;
}

uint64_t rendezvousScore(uint64_t key_hash, EndpointId endpoint) {
  return hash::mix(key_hash ^ endpoint);
}

std::optional<EndpointId> pickRendezvous(uint64_t key_hash, std::span<const EndpointId> eligible) {
  std::optional<EndpointId> best;
  uint64_t best_score = 0;
  for (EndpointId id : eligible) {
    uint64_t score = rendezvousScore(key_hash, id);
    if (!best || score > best_score || (score == best_score && id > *best)) {
      best = id;
      best_score = score;
    }
  }
  return best;
}

std::optional<EndpointId> pickLeastSessions(uint64_t key_hash, std::span<const EndpointId> eligible,
                                            const StickTable& table,
                                            std::span<const uint64_t> peer_sessions) {
  const bool with_peers = !peer_sessions.empty() && peer_sessions.size() == eligible.size();
  std::optional<EndpointId> best;
  uint64_t best_sessions = 0;
  uint64_t best_score = 0;
  for (size_t i = 0; i < eligible.size(); ++i) {
    const EndpointId id = eligible[i];
    uint64_t sessions = table.sessionsOf(id) + (with_peers ? peer_sessions[i] : 0);
    uint64_t score = rendezvousScore(key_hash, id);
    if (!best || sessions < best_sessions ||
        (sessions == best_sessions &&
         (score > best_score || (score == best_score && id > *best)))) {
      best = id;
      best_sessions = sessions;
      best_score = score;
    }
  }
  return best;
}

std::optional<EndpointId> pickRoundRobin(std::atomic<uint64_t>& counter,
                                         std::span<const EndpointId> eligible) {
  if (eligible.empty()) return std::nullopt;
  uint64_t turn = counter.fetch_add(1, std::memory_order_relaxed);
  return eligible[turn % eligible.size()];
}

std::optional<EndpointId> pick(Placement policy, uint64_t key_hash,
                               std::span<const EndpointId> eligible, const StickTable& table,
                               std::atomic<uint64_t>& round_robin,
                               std::span<const uint64_t> peer_sessions) {
  switch (policy) {
    case Placement::LeastSessions:
      return pickLeastSessions(key_hash, eligible, table, peer_sessions);
    case Placement::ConsistentHash:
      return pickRendezvous(key_hash, eligible);
    case Placement::RoundRobin:
      return pickRoundRobin(round_robin, eligible);
  }
  return std::nullopt;
}

}  // namespace sticky::proxy
