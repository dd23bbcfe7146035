#include "routing/redis_layout.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace sticky::proxy {

using std::chrono::milliseconds;

std::string sessionKey(std::string_view prefix, std::string_view route, std::string_view key) {
  std::string out;
  out.reserve(prefix.size() + route.size() + 1 + key.size());
  out.append(prefix).append(route).append(":").append(key);
  return out;
}

void writeEndpointValue(EndpointId id, char (&out)[16]) {
  constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i, id >>= 4) out[i] = kHex[id & 0xf];
}

std::string endpointValue(EndpointId id) {
  char buf[16];
  writeEndpointValue(id, buf);
  return {buf, sizeof buf};
}

std::optional<EndpointId> parseEndpointValue(std::string_view text) {
  if (text.size() != 16) return std::nullopt;
  EndpointId id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id, 16);
  if (ec != std::errc() || end != text.data() + text.size() || id == 0) return std::nullopt;
  return id;
}

std::string loadKey(std::string_view prefix, std::string_view route) {
  std::string out;
  out.reserve(prefix.size() + 5 + route.size());
  out.append(prefix).append("load:").append(route);
  return out;
}

std::string encodeLoadCounts(const EndpointCounts& counts) {
  std::string out;
  out.reserve(counts.size() * 24);
  for (const auto& [id, n] : counts) {
    if (!out.empty()) out += ',';
    out += endpointValue(id);
    out += '=';
    out += std::to_string(n);
  }
  return out;
}

namespace {

template <typename T>
std::optional<T> parseDecimal(std::string_view text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<LoadField> decodeLoadField(std::string_view value) {
  size_t space = value.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  LoadField field;
  auto at = parseDecimal<int64_t>(value.substr(0, space));
  if (!at || *at < 0) return std::nullopt;
  field.at_ms = *at;
  std::string_view rest = value.substr(space + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (comma != std::string_view::npos && rest.empty()) return std::nullopt;  // trailing ','
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    auto id = parseEndpointValue(item.substr(0, eq));
    auto n = parseDecimal<uint64_t>(item.substr(eq + 1));
    if (!id || !n || *n > kMaxPeerCount) return std::nullopt;
    field.counts.emplace_back(*id, *n);
  }
  return field;
}

PeerLoad sumPeerLoad(const std::vector<std::pair<std::string, std::string>>& fields,
                     std::string_view own, int64_t now_ms) {
  PeerLoad load;
  for (const auto& [replica, value] : fields) {
    if (replica == own) continue;
    auto field = decodeLoadField(value);
    // Redis's clock stamps and reads, so a field from the future only follows a failover to a
    // primary whose clock is behind: it counts as fresh as long as it is near.
    const int64_t age = field ? now_ms - field->at_ms : 0;
    if (!field || age > kPeerLoadGone.count() || -age > kPeerLoadGone.count()) {
      load.gone.push_back(replica);
      continue;
    }
    if (age > kPeerLoadFresh.count() || -age > kPeerLoadFresh.count()) continue;
    ++load.replicas;
    for (const auto& [id, n] : field->counts) load.sessions[id] += n;
  }
  return load;
}

milliseconds redisMargin(milliseconds ttl) {
  return std::clamp<milliseconds>(ttl / 8, std::chrono::seconds(1), std::chrono::minutes(5));
}

milliseconds sessionLifetime(milliseconds ttl) {
  return ttl + redisMargin(ttl);
}

std::string sessionPx(milliseconds ttl) {
  return std::to_string(sessionLifetime(ttl).count());
}

}  // namespace sticky::proxy
