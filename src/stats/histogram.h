#pragma once
// A Prometheus histogram with fixed bucket bounds, cheap enough for the proxy's hot path:
// one thread observes (the proxy's event loop, or an event listener, which the event
// hub never calls from two threads at once); any thread may read a snapshot.

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

namespace sm::stats {

/// Adds `n` to a counter that only one thread writes: a plain load and store (no locked
/// read-modify-write), still race-free for readers on other threads.
inline void bump(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

/// What a histogram held at one moment: cumulative counts per upper bound (the last is
/// +Inf, so its count is the total), and the sum of observed values.
struct HistogramSnapshot {
  std::vector<double> bounds;       // upper bounds, increasing, without +Inf
  std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries; the last is the count
  double sum = 0;
  uint64_t count() const { return cumulative.empty() ? 0 : cumulative.back(); }
};

/// Histogram of durations in seconds over at most kMaxBuckets bounds. observe() is for
/// one writer thread at a time; snapshot() for any thread.
class Histogram {
 public:
  static constexpr size_t kMaxBuckets = 16;
  /// `bounds`: increasing upper bounds in seconds, at most kMaxBuckets.
  explicit Histogram(std::span<const double> bounds);
  void observe(double seconds);
  HistogramSnapshot snapshot() const;

 private:
  std::array<double, kMaxBuckets> bounds_{};
  size_t n_ = 0;
  std::array<std::atomic<uint64_t>, kMaxBuckets + 1> counts_{};  // per bucket, not cumulative
  std::atomic<uint64_t> sum_ns_{0};
};

/// Bounds for request latencies: 1 ms to 10 s.
inline constexpr std::array<double, 13> kRequestBounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                       0.25,  0.5,    1,     2.5,  5,     10};
/// Bounds for deploys: 100 ms to 10 min.
inline constexpr std::array<double, 12> kDeployBounds{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};

}  // namespace sm::stats
