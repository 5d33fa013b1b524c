#pragma once
// The daemon's only waitpid caller.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

namespace sm::process {

using Clock = std::chrono::steady_clock;

/// Interrupts one thread's blocking system call (pthread_kill; its handler does
/// nothing and does not restart the call). Blocked in every thread but the one that
/// expects it.
inline int interrupt_signal() { return SIGRTMIN + 2; }

/// Blocks SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR2, SIGPIPE and interrupt_signal() in the calling thread; call it in main
/// before any thread exists so every thread inherits the mask (the reaper and the
/// signal wait in main then receive them synchronously).
void block_daemon_signals();

/// Reaper makes the daemon a child subreaper (orphans of its children, even ones that
/// called setsid and double-forked, become its children) and reaps every child on one
/// thread. It records the exit status of the pids it was asked to watch and wakes
/// waiters on every exit, so "has this group gone" can be re-checked at once.
class Reaper {
 public:
  Reaper();
  ~Reaper();
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  /// Runs `spawn` (which returns a child pid, or -1) under the reaper's lock and starts
  /// watching the pid, so an exit that happens at once cannot be missed.
  pid_t spawn_watched(const std::function<pid_t()>& spawn);

  /// The wait status of a watched pid once it exited; nullopt while it runs.
  std::optional<int> exit_status(pid_t pid) const;

  /// Stops watching `pid` (drops its recorded status).
  void forget(pid_t pid);

  /// A counter that grows on every reaped child (and on wake()).
  uint64_t generation() const;

  /// Blocks until generation() differs from `seen` or `deadline` passes.
  void wait_change(uint64_t seen, Clock::time_point deadline) const;

  /// Wakes every wait_change caller (used at shutdown).
  void wake();

 private:
  void run();
  void reap_all();

  int signal_fd_ = -1;
  int stop_fd_ = -1;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  uint64_t generation_ = 0;
  std::unordered_map<pid_t, std::optional<int>> watched_;
  std::thread thread_;
};

/// "exited with status 1" / "killed by signal 9 (Killed)" for a wait status.
std::string describe_exit(int wait_status);

}  // namespace sm::process
