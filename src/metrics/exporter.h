#pragma once
// GET /metrics (contract §11): the daemon's counters, kept by a listener of its event
// stream, its state as status() reports it, and the proxy's request counters, written
// in the Prometheus text format.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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

/// Keeps the counters of the apps it watches (a listener of each one's events, from
/// watch() until forget()) and writes them, each app's state as status() reports it and
/// the proxy's request counters, on scrape().
class Exporter {
 public:
  /// `proxy`: none in direct mode (no proxy families then). `by_app`: a server config:
  /// every per-app series carries an `app` label; otherwise exactly one app is watched
  /// and its series carry none (as before there were several apps).
  Exporter(const proxy::Proxy* proxy, bool by_app) : proxy_(proxy), by_app_(by_app) {}
  /// Counts `app`'s operations from now on, as `name` (the counts so far go on when an
  /// app of that name is watched already: a reload replaced it).
  void watch(const std::string& name, std::shared_ptr<app::App> app);
  /// Stops counting the app `name` (removed by a reload); its series go.
  void forget(const std::string& name);
  std::string scrape() const;

 private:
  struct Watched {
    std::string name;
    std::shared_ptr<app::App> app;
    OperationCounters ops;
    app::Events::Subscription listening;  // last: unsubscribed before ops goes
  };
  const proxy::Proxy* proxy_;
  const bool by_app_;
  mutable std::mutex mu_;  // guards apps_ (not the counters: atomics)
  std::vector<std::unique_ptr<Watched>> apps_;
};

}  // namespace sm::metrics
