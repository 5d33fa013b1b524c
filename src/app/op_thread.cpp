#include "app/op_thread.h"

#include <algorithm>
#include <utility>

namespace sm::app {

OpThread::OpThread() : thread_([this] { loop(); }) {}

OpThread::~OpThread() {
  {
    std::lock_guard lock(mu_);
    stop_ = closed_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void OpThread::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

OpThread::Turn OpThread::run_task(std::function<void()> task, Clock::time_point wait_until,
                                  const std::function<bool()>& gave_up) {
  std::unique_lock lock(mu_);
  const uint64_t me = next_ticket_++;
  waiting_.push_back(me);
  auto leave = [&](Turn why) {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), me));
    cv_.notify_all();  // the caller behind may be first now
    return why;
  };
  for (;;) {
    if (closed_) return leave(Turn::Closed);
    if (!busy_ && waiting_.front() == me) break;
    const auto now = Clock::now();
    if (now >= wait_until || (gave_up && gave_up())) return leave(Turn::Busy);
    cv_.wait_until(lock, std::min(wait_until, now + std::chrono::milliseconds(100)));
  }
  waiting_.pop_front();
  busy_ = true;
  task_ = std::move(task);
  error_ = nullptr;
  cv_.notify_all();
  cv_.wait(lock, [&] { return !task_; });
  busy_ = false;
  cv_.notify_all();  // the next waiting caller's turn
  if (auto e = std::exchange(error_, nullptr)) std::rethrow_exception(e);
  return Turn::Ran;
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

}  // namespace sm::app
