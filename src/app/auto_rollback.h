#pragma once
// Auto-rollback (contract §10, config "auto_rollback_s"): a trigger that watches the
// daemon's events after each successful deploy and, when the new live app exits or fails
// three health probes in a row within the window, asks the daemon to roll back. The
// state machine knows nothing of it. An auto-rollback (or any other operation) ends the
// window, so it never triggers another.

#include <chrono>
#include <mutex>
#include <optional>
#include <string>

#include "app/events.h"
#include "threads/inbox.h"

namespace sm::app {

class App;

/// The window after a deploy, fed the daemon's events: says when to roll back and why.
class RollbackWatch {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kFailedProbes = 3;
  explicit RollbackWatch(std::chrono::seconds window) : window_(window) {}

  /// What to roll back from, and why.
  struct Verdict {
    std::string slot, commit, reason;
  };
  /// Feeds `e` (at e.at); a verdict when the deployed app has failed within the window.
  std::optional<Verdict> on(const Event& e);
  bool armed() const { return armed_.has_value(); }

 private:
  struct Armed {
    std::string slot, commit;
    Clock::time_point since, until;
    int failures = 0;
  };
  std::chrono::seconds window_;
  std::optional<Armed> armed_;
};

/// Runs one thread that hands each verdict to App::auto_rollback().
class AutoRollback {
 public:
  AutoRollback(App& daemon, int window_s);
  ~AutoRollback() { stop(); }
  AutoRollback(const AutoRollback&) = delete;
  AutoRollback& operator=(const AutoRollback&) = delete;
  void stop();

 private:
  void roll_back(const RollbackWatch::Verdict& v);
  App& app_;
  std::mutex mu_;
  RollbackWatch watch_;  // guarded by mu_ (events come from several threads)
  threads::Inbox<RollbackWatch::Verdict> verdicts_{threads::Keep::Latest};
  Events::Subscription events_;
};

}  // namespace sm::app
