#pragma once
// Crash restart (contract §10, config "restart": "on-failure"): a trigger that watches
// the daemon's events for an exit of the live app nobody asked for and asks the daemon
// to start it again, with backoff. The state machine knows nothing of it.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "daemon/events.h"

namespace sm::daemon {

class Daemon;

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
/// then asks Daemon::restart_crashed() (queued behind a running operation), and keeps
/// trying with growing waits while that fails and the crashed version is still live.
class CrashRestart {
 public:
  explicit CrashRestart(Daemon& daemon);
  ~CrashRestart() { stop(); }
  CrashRestart(const CrashRestart&) = delete;
  CrashRestart& operator=(const CrashRestart&) = delete;
  /// Ends the thread (a wait is cut short); idempotent.
  void stop();

 private:
  struct Crash {
    std::string slot, commit;
  };
  void run();
  /// Sleeps `d` unless stopped; false when stopped.
  bool sleep(std::chrono::seconds d);

  Daemon& daemon_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Crash> pending_;
  bool stop_ = false;
  Backoff backoff_;
  Events::Subscription exits_;
  std::thread thread_;
};

}  // namespace sm::daemon
