#pragma once
// Responses counted by status class (1xx..5xx): relaxed atomics bumped on the request path and
// read by the metrics and admin endpoints.
//
//   CodeClassCounts c;  c.count(204);  c.count(503);  c.get(1) -> 1 (2xx)  c.get(4) -> 1 (5xx)

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sticky::proxy {

/// The code_class label values, indexed as CodeClassCounts counts them.
inline constexpr std::array<std::string_view, 5> kCodeClasses = {"1xx", "2xx", "3xx", "4xx", "5xx"};

struct CodeClassCounts {
  std::array<std::atomic<uint64_t>, kCodeClasses.size()> by_class{};

  /// Counts `status` in its class; a status outside 100-599 is not counted.
  void count(unsigned status) {
    if (status >= 100 && status < 600)
      by_class[status / 100 - 1].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t get(size_t code_class) const {
    return by_class[code_class].load(std::memory_order_relaxed);
  }
};

}  // namespace sticky::proxy
