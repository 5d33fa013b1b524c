#pragma once
// Items handed to a thread of their own, one at a time: the shape of every trigger and
// listener that must not make the event stream or a request wait (crash restart,
// auto-rollback, the webhook receiver, GitHub deployments). One mutex, one condition
// variable, one thread, written once.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace sm::threads {

/// What waits when an item arrives while another waits: only the newest (a push that
/// replaces an older one not yet deployed), or all of them in order.
enum class Keep { Latest, All };

template <class T>
class Inbox {
 public:
  explicit Inbox(Keep keep) : keep_(keep) {}
  ~Inbox() { close(); }
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  /// Starts the thread that hands each item to `handle`, in turn; once (a second call,
  /// or one after close(), does nothing).
  void start(std::function<void(T&)> handle) {
    std::lock_guard lock(mu_);
    if (thread_.joinable() || closed_) return;
    handle_ = std::move(handle);
    thread_ = std::thread([this] { run(); });
  }

  struct Put {
    bool taken = false;         // false: closed, the item was dropped
    std::optional<T> replaced;  // Keep::Latest: the waiting item this one replaced
    bool behind = false;        // it waits for an item being handled (or for start())
  };
  /// Hands `item` over; never waits for the handler.
  Put put(T item) {
    Put p;
    {
      std::lock_guard lock(mu_);
      if (closed_) return p;
      p.taken = true;
      if (keep_ == Keep::Latest && !items_.empty()) {
        p.replaced = std::move(items_.front());
        items_.clear();
      }
      p.behind = busy_ || !items_.empty() || p.replaced || !thread_.joinable();
      items_.push_back(std::move(item));
    }
    cv_.notify_all();
    return p;
  }

  /// For the handler's waits (backoff, retries): sleeps `d`, or less when close() is
  /// called; false when closed.
  template <class Rep, class Period>
  bool sleep_for(std::chrono::duration<Rep, Period> d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [&] { return closed_; });
  }

  /// Takes no more items and drops the waiting ones (returns how many); the item being
  /// handled runs to its end (its sleep_for returns false at once), then the thread is
  /// joined. Idempotent; not from the handler itself.
  size_t close() {
    size_t dropped;
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      dropped = items_.size();
      items_.clear();
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return dropped;
  }

 private:
  void run() {
    for (;;) {
      std::optional<T> item;
      {
        std::unique_lock lock(mu_);
        busy_ = false;
        cv_.wait(lock, [&] { return closed_ || !items_.empty(); });
        if (closed_) return;
        item.emplace(std::move(items_.front()));
        items_.pop_front();
        busy_ = true;
      }
      handle_(*item);
    }
  }

  const Keep keep_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;
  bool busy_ = false, closed_ = false;
  std::function<void(T&)> handle_;
  std::thread thread_;
};

}  // namespace sm::threads
