#include "ui/event_feed.h"

#include "ui/sse.h"

namespace sm::ui {

EventFeed::EventFeed(app::Events& events)
    : listening_(events.subscribe([this](const app::Event& e) {
        if (e.kind == app::EventKind::LiveProbe) return;
        nlohmann::json data = e.fields;
        data["op"] = e.op;
        std::string text = sse_event(app::name_of(e.kind), data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        {
          std::lock_guard lock(mu_);
          if (queue_.size() >= kMaxQueued) {
            queue_.pop_front();
            gap_ = true;
          }
          queue_.push_back(std::move(text));
        }
        cv_.notify_one();
      })) {}

std::string EventFeed::next(std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, wait, [&] { return !queue_.empty(); });
  std::string out;
  if (gap_) out += sse_event("gap", "{}");
  gap_ = false;
  for (auto& t : queue_) out += t;
  queue_.clear();
  return out;
}

}  // namespace sm::ui
