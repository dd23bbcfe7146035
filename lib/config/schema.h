#pragma once
// Facts about the proxy config's fields that both reading (types, storage) and validate()
// (semantics) state, so both say the same thing about the same field. Private to lib/config.

#include <cstdint>
#include <limits>
#include <string_view>

#include "config/json_reader.h"

namespace sticky::schema {

inline constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

inline constexpr UintRange kVersionRange{0, kU64Max};
inline constexpr UintRange kPortRange{1, 65535};
inline constexpr UintRange kMaxSessionsRange{1, kU64Max};
inline constexpr UintRange kMaxHeaderBytesRange{1024, 1024 * 1024};
inline constexpr UintRange kMaxHeaderCountRange{1, 10000};
inline constexpr UintRange kMaxIdleRange{0, 100000};
inline constexpr UintRange kMaxConnectionsRange{1, 10000000};

inline const char* const kHeaderTokenHint =
    "must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)";
inline const char* const kDurationHint = "such as \"30m\", \"1h30m\", \"10s\" or \"250ms\"";

}  // namespace sticky::schema
