#include "metrics/instruments.h"

#include <algorithm>

namespace sticky::metrics {

CounterVec::CounterVec(std::vector<std::string> label_names)
    : label_names_(std::move(label_names)) {}

void CounterVec::add(const std::vector<std::string>& values, uint64_t n) {
  std::lock_guard lock(mutex_);
  values_[values] += n;
}

uint64_t CounterVec::value(const std::vector<std::string>& values) const {
  std::lock_guard lock(mutex_);
  auto it = values_.find(values);
  return it == values_.end() ? 0 : it->second;
}

void CounterVec::render(Exposition& x, std::string_view name) const {
  std::map<std::vector<std::string>, uint64_t> values;
  {
    std::lock_guard lock(mutex_);
    values = values_;
  }
  // Label lists are built per series; at most a handful of labels.
  for (const auto& [labels, value] : values) {
    std::string line(name);
    line += '{';
    for (size_t i = 0; i < label_names_.size() && i < labels.size(); ++i) {
      if (i > 0) line += ',';
      line += label_names_[i];
      line += "=\"";
      line += escapeLabelValue(labels[i]);
      line += '"';
    }
    line += '}';
    x.sample(line, {}, value);
  }
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds), buckets_(bounds.size() + 1) {}

void Histogram::observe(double value) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                 bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  if (value > 0) {
    sum_nanos_.fetch_add(static_cast<uint64_t>(value * 1e9), std::memory_order_relaxed);
  }
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::render(Exposition& x, std::string_view name,
                       std::initializer_list<Label> labels) const {
  std::vector<uint64_t> per_bucket;
  per_bucket.reserve(buckets_.size());
  for (const auto& b : buckets_) per_bucket.push_back(b.load(std::memory_order_relaxed));
  double sum = static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) / 1e9;
  x.histogram(name, labels, bounds_, per_bucket, sum, count());
}

}  // namespace sticky::metrics
