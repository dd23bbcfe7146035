#pragma once
// Fast, stable 64-bit hashing for session keys and endpoint ids (private to routing/).
// Stable means: the same bytes give the same hash in every process and on every architecture
// (no per-process seed), so replicas using rendezvous hashing agree without coordinating.
// The construction follows wyhash (128-bit multiply folded to 64 bits); it is not a MAC, and
// hash flooding of one route's table is bounded by its maxSessions cap, not by the hash.

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace sticky::proxy::hash {

inline constexpr uint64_t kP0 = 0xa0761d6478bd642fULL;
inline constexpr uint64_t kP1 = 0xe7037ed1a0b428dbULL;
inline constexpr uint64_t kP2 = 0x8ebc6af09c88c6e3ULL;
inline constexpr uint64_t kP3 = 0x589965cc75374cc3ULL;

/// 64x64 -> 128-bit multiply, halves xor-folded.
inline uint64_t mum(uint64_t a, uint64_t b) {
  unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

/// A strong finalizer of one 64-bit value (bijective; used for rendezvous scores and slots).
inline uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

inline uint64_t read64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

inline uint64_t read32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  return v;
}

inline uint64_t bytes(std::string_view s, uint64_t seed = 0) {
  const char* p = s.data();
  const size_t n = s.size();
  uint64_t h = seed ^ mum(seed ^ kP0, kP1);
  uint64_t a = 0;
  uint64_t b = 0;
  if (n <= 16) {
    if (n >= 4) {
      const size_t q = (n >> 3) << 2;
      a = (read32(p) << 32) | read32(p + q);
      b = (read32(p + n - 4) << 32) | read32(p + n - 4 - q);
    } else if (n > 0) {
      a = (static_cast<uint64_t>(static_cast<uint8_t>(p[0])) << 16) |
          (static_cast<uint64_t>(static_cast<uint8_t>(p[n >> 1])) << 8) |
          static_cast<uint8_t>(p[n - 1]);
    }
  } else {
    size_t i = n;
    while (i > 16) {
      h = mum(read64(p) ^ kP1, read64(p + 8) ^ h);
      p += 16;
      i -= 16;
    }
    a = read64(p + i - 16);
    b = read64(p + i - 8);
  }
  return mum(kP1 ^ n, mum(a ^ kP1, b ^ h ^ kP2) ^ kP3);
}

}  // namespace sticky::proxy::hash
