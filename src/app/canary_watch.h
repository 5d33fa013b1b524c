#pragma once
// A canary (contract §14) that exits or fails three health probes in a row ends by
// itself: a trigger fed the daemon's events (the monitor's canary probes) that asks the
// daemon to end it, as auto-rollback does for a live version. The state machine knows
// nothing of it.

#include <mutex>
#include <optional>
#include <string>

#include "app/events.h"
#include "threads/inbox.h"

namespace sm::app {

class App;

/// Fed the daemon's events: says when a canary must end, and why.
class CanaryWatch {
 public:
  static constexpr int kFailedProbes = 3;
  struct Verdict {
    std::string commit, reason;
  };
  std::optional<Verdict> on(const Event& e);

 private:
  std::string commit_;  // the canary the failures below are of
  int failures_ = 0;
  bool told_ = false;   // a verdict was given for it
};

/// Runs one thread that hands each verdict to App::abort_canary().
class CanaryGuard {
 public:
  explicit CanaryGuard(App& app);
  ~CanaryGuard() { stop(); }
  CanaryGuard(const CanaryGuard&) = delete;
  CanaryGuard& operator=(const CanaryGuard&) = delete;
  void stop();

 private:
  App& app_;
  std::mutex mu_;
  CanaryWatch watch_;  // guarded by mu_
  threads::Inbox<CanaryWatch::Verdict> verdicts_{threads::Keep::Latest};
  Events::Subscription events_;
};

}  // namespace sm::app
