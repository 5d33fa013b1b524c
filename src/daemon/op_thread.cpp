#include "daemon/op_thread.h"

#include <utility>

namespace sm::daemon {

OpThread::OpThread() : thread_([this] { loop(); }) {}

OpThread::~OpThread() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool OpThread::try_run_task(std::function<void()> task) {
  std::unique_lock lock(mu_);
  if (busy_ || stop_) return false;
  busy_ = true;
  task_ = std::move(task);
  error_ = nullptr;
  cv_.notify_all();
  cv_.wait(lock, [&] { return !task_; });
  busy_ = false;
  if (auto e = std::exchange(error_, nullptr)) std::rethrow_exception(e);
  return true;
}

void OpThread::loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return task_ || stop_; });
    if (!task_) return;  // stopping, and nothing handed over
    lock.unlock();
    std::exception_ptr error;
    try {
      task_();
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    error_ = error;
    task_ = nullptr;
    cv_.notify_all();
  }
}

}  // namespace sm::daemon
