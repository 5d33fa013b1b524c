#pragma once
// GET /metrics (contract §11): the daemon's counters, kept by a listener of its event
// stream, its state as status() reports it, and the proxy's request counters, written
// in the Prometheus text format.

#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "app/app.h"
#include "app/events.h"
#include "stats/histogram.h"

namespace sm::proxy {
class Proxy;
}

namespace sm::metrics {

/// What the event stream told so far: finished operations by kind and result, and how
/// long deploys took. Counts from the daemon's start (Prometheus reads a smaller value
/// as a reset).
class OperationCounters {
 public:
  /// Counts one event; the rest are ignored. Events come one at a time (Events::publish).
  void count(const app::Event& e);

  /// Finished operations by journal action and result. Every pair the exporter names is
  /// there from the start, at 0.
  uint64_t finished(const std::string& action, const std::string& result) const;
  /// Operations of action "restart" that started the app again, by reason
  /// (crashed, requested, daemon-start).
  uint64_t restarts(const std::string& reason) const;
  stats::HistogramSnapshot deploy_durations() const { return deploy_seconds_.snapshot(); }

 private:
  // Keys are fixed at construction (the maps never change shape); values are atomics
  // written by the listener only.
  std::map<std::string, std::atomic<uint64_t>> finished_ = make_finished();
  std::map<std::string, std::atomic<uint64_t>> restarts_ = make_restarts();
  stats::Histogram deploy_seconds_{stats::kDeployBounds};
  static std::map<std::string, std::atomic<uint64_t>> make_finished();
  static std::map<std::string, std::atomic<uint64_t>> make_restarts();
};

/// Subscribes to `daemon`'s events for as long as it lives; scrape() writes the text.
class Exporter {
 public:
  /// `proxy`: none in direct mode (no proxy families then).
  Exporter(app::App& daemon, const proxy::Proxy* proxy);
  std::string scrape() const;

 private:
  app::App& app_;
  const proxy::Proxy* proxy_;
  OperationCounters ops_;
  app::Events::Subscription listening_;  // last: unsubscribed before ops_ goes
};

}  // namespace sm::metrics
