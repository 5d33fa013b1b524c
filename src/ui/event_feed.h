#pragma once
// The dashboard's view of the daemon's event stream: a listener that queues each event
// as Server-Sent Event text for one browser, taken out by that browser's HTTP thread.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>

#include "app/events.h"

namespace sm::ui {

/// One subscriber's queue. Events are `event: <kind>` with the event's fields and its
/// operation number `op` as JSON data; the monitor's once-a-second live probes are left
/// out (health flips come as health_changed). At most kMaxQueued wait: past that the
/// oldest are dropped and a `gap` event tells the page to reload what it shows.
class EventFeed {
 public:
  static constexpr size_t kMaxQueued = 1000;
  explicit EventFeed(app::Events& events);
  /// What arrived, as SSE text; waits up to `wait` when nothing has ("" then).
  std::string next(std::chrono::milliseconds wait);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool gap_ = false;
  app::Events::Subscription listening_;  // last: unsubscribed before the queue goes
};

}  // namespace sm::ui
