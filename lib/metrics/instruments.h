#pragma once
// Two small instruments for code off the request path (the operator), rendered into an
// Exposition at scrape time. The proxy's request path keeps its own relaxed atomics instead.
//
//   metrics::CounterVec requests({"code", "method", "host"});
//   requests.add({"200", "GET", "10.0.0.1:443"});
//   metrics::Histogram took(metrics::kControllerRuntimeBuckets);
//   took.observe(0.012);
//   ...at scrape time:
//   x.family("rest_client_requests_total", "counter", "...");
//   requests.render(x, "rest_client_requests_total");
//   x.family("took_seconds", "histogram", "...");
//   took.render(x, "took_seconds", {{"controller", "stickyroute"}});

#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "metrics/exposition.h"

namespace sticky::metrics {

/// controller-runtime's reconcile_time_seconds buckets (v0.15 and later), in seconds.
inline constexpr std::array<double, 40> kControllerRuntimeBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.1,  0.15, 0.2,  0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6,
    0.7,   0.8,  0.9,   1.0,  1.25, 1.5,  1.75, 2.0,  2.5, 3.0,  3.5, 4.0,  4.5, 5,
    6,     7,    8,     9,    10,   15,   20,   25,   30,  40,   50,  60};

/// Counters by label values (a few dozen series at most). Thread-safe; `add` takes a mutex.
class CounterVec {
 public:
  explicit CounterVec(std::vector<std::string> label_names);

  /// Adds `n` to the series with these label values (one per label name, in order).
  void add(const std::vector<std::string>& values, uint64_t n = 1);
  /// The value of one series (0 if never added to).
  uint64_t value(const std::vector<std::string>& values) const;
  /// Writes every series as samples of `name` (the family must be declared by the caller).
  void render(Exposition& x, std::string_view name) const;

 private:
  std::vector<std::string> label_names_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, uint64_t> values_;
};

/// A histogram with fixed bounds (seconds, bytes, ...). Lock-free; `bounds` must outlive it and
/// be sorted.
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);

  void observe(double value);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  /// Writes `<name>_bucket`, `_sum` and `_count` (the family must be declared by the caller).
  void render(Exposition& x, std::string_view name, std::initializer_list<Label> labels) const;

 private:
  std::span<const double> bounds_;
  std::vector<std::atomic<uint64_t>> buckets_;  // bounds + 1 (the last: above every bound)
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_nanos_{0};  // the sum in units of 1e-9
};

}  // namespace sticky::metrics
