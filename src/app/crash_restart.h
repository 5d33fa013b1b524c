#pragma once
// Crash restart (contract §10, config "restart": "on-failure"): a trigger that watches
// the daemon's events for an exit of the live app nobody asked for and asks the daemon
// to start it again, with backoff. The state machine knows nothing of it.

#include <chrono>
#include <optional>
#include <string>

#include "app/events.h"
#include "threads/inbox.h"

namespace sm::app {

class App;

/// The backoff between restarts: 1 s, 2 s, 4 s ... 60 s; back to 1 s once the app has
/// run for 60 s since its last restart.
class Backoff {
 public:
  using Clock = std::chrono::steady_clock;
  /// The wait before the next restart after a crash at `now`.
  std::chrono::seconds next(Clock::time_point now);
  /// A restart was made at `now`.
  void restarted(Clock::time_point now) { last_ = now; }

 private:
  std::chrono::seconds delay_{0};
  std::optional<Clock::time_point> last_;
};

/// CrashRestart runs one thread that sleeps until the live app exits, waits its backoff,
/// then asks App::restart_crashed() (queued behind a running operation), and keeps
/// trying with growing waits while that fails and the crashed version is still live.
class CrashRestart {
 public:
  explicit CrashRestart(App& daemon);
  ~CrashRestart() { stop(); }
  CrashRestart(const CrashRestart&) = delete;
  CrashRestart& operator=(const CrashRestart&) = delete;
  /// Ends the thread (a wait is cut short); idempotent.
  void stop();

 private:
  struct Crash {
    std::string slot, commit;
  };
  /// Restarts the crashed app until it runs again or is no longer ours to restart.
  void restart(const Crash& crash);

  App& app_;
  Backoff backoff_;  // the inbox's thread only
  threads::Inbox<Crash> crashes_{threads::Keep::Latest};
  Events::Subscription exits_;
};

}  // namespace sm::app
