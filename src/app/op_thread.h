#pragma once
// The one thread that runs the daemon's operations, and the queue of callers waiting
// for it.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace sm::app {

/// OpThread runs operations (deploy, rollback, restart) one at a time on one long-lived
/// thread, for a caller that waits for the result. All the git and checkout work then
/// allocates from one thread's malloc arena and cache: run on whichever API thread took
/// the call, each of those threads kept its own high-water mark of freed memory (~1 MB
/// each for a repository of a few thousand files). Callers that agree to wait for a
/// running operation are served first come, first served.
class OpThread {
 public:
  using Clock = std::chrono::steady_clock;
  /// How a call went: its operation ran, or it did not get its turn (busy until the
  /// caller's deadline, or the caller gave up), or the thread is closed.
  enum class Turn { Ran, Busy, Closed };

  OpThread();
  ~OpThread();  // waits for the running operation, then joins
  OpThread(const OpThread&) = delete;
  OpThread& operator=(const OpThread&) = delete;

  /// Runs `fn` on the thread when it is this caller's turn: at once when nothing runs
  /// and nobody waits; else after the callers before it, if that is before `wait_until`
  /// and `gave_up()` (asked every 100 ms) stays false. `out` gets fn's result; an
  /// exception it throws is rethrown here.
  template <typename F, typename R>
  Turn run(F&& fn, std::optional<R>& out, Clock::time_point wait_until = {},
           const std::function<bool()>& gave_up = {}) {
    return run_task([&] { out.emplace(fn()); }, wait_until, gave_up);
  }

  /// Whether an operation runs or a caller waits for its turn.
  bool busy() {
    std::lock_guard lock(mu_);
    return busy_ || !waiting_.empty();
  }

  /// From now on every caller waiting, and every new one, gets Turn::Closed (the
  /// running operation finishes).
  void close();

 private:
  Turn run_task(std::function<void()> task, Clock::time_point wait_until,
                const std::function<bool()>& gave_up);
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> task_;  // the operation handed over, until it has run
  bool busy_ = false;           // a caller is between handing over and getting the result
  std::deque<uint64_t> waiting_;  // tickets of callers waiting for their turn, in order
  uint64_t next_ticket_ = 0;
  bool closed_ = false;  // close() was called
  bool stop_ = false;    // the destructor runs
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace sm::app
