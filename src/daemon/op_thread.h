#pragma once
// The one thread that runs the daemon's operations.

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace sm::daemon {

/// OpThread runs operations (deploy, rollback) one at a time on one long-lived thread,
/// for a caller that waits for the result. All the git and checkout work then allocates
/// from one thread's malloc arena and cache: run on whichever API thread took the call,
/// each of those threads kept its own high-water mark of freed memory (~1 MB each for a
/// repository of a few thousand files).
class OpThread {
 public:
  OpThread();
  ~OpThread();  // waits for the running operation, then joins
  OpThread(const OpThread&) = delete;
  OpThread& operator=(const OpThread&) = delete;

  /// Runs `fn` on the thread and returns its result (an exception it throws is rethrown
  /// here); nullopt at once, without running it, when another operation is running.
  template <typename F>
  auto try_run(F&& fn) -> std::optional<decltype(fn())> {
    std::optional<decltype(fn())> out;
    if (!try_run_task([&] { out.emplace(fn()); })) return std::nullopt;
    return out;
  }

 private:
  bool try_run_task(std::function<void()> task);
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> task_;  // the operation handed over, until it has run
  bool busy_ = false;           // a caller is between handing over and getting the result
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace sm::daemon
