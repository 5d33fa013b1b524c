#include "stats/histogram.h"

#include <algorithm>
#include <stdexcept>

namespace sm::stats {

Histogram::Histogram(std::span<const double> bounds) : n_(bounds.size()) {
  if (bounds.size() > kMaxBuckets || !std::is_sorted(bounds.begin(), bounds.end()))
    throw std::invalid_argument("histogram bounds must be increasing and at most 16");
  std::copy(bounds.begin(), bounds.end(), bounds_.begin());
}

void Histogram::observe(double seconds) {
  size_t i = 0;
  while (i < n_ && seconds > bounds_[i]) ++i;  // le: a value equal to a bound is in it
  bump(counts_[i]);
  bump(sum_ns_, static_cast<uint64_t>(std::max(seconds, 0.0) * 1e9));
}

HistogramSnapshot Histogram::snapshot() const {
  HistogramSnapshot s;
  s.bounds.assign(bounds_.begin(), bounds_.begin() + static_cast<std::ptrdiff_t>(n_));
  uint64_t running = 0;
  for (size_t i = 0; i <= n_; ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

}  // namespace sm::stats
