// What running as a service asks of the daemon: hold operations still while a newer
// daemon takes over, hand it the apps, and a status line for systemd.

#include <fmt/format.h>

#include "app/app.h"
#include "log/log.h"

namespace sm::app {

std::unique_lock<std::mutex> App::hold_operations() {
  std::unique_lock op(op_mu_, std::try_to_lock);
  if (op && (stopping_ || ops_.busy())) op.unlock();
  return op;
}

void App::hand_over() {
  handed_over_ = true;
  begin_shutdown();  // from now on every operation is refused (503)
  stop_monitor();
  // A canary survives nothing: everyone goes to live, its requests finish, it stops
  // (journalled canary-abort), and the new daemon adopts live alone.
  Slot* canary = nullptr;
  std::string commit;
  {
    std::lock_guard lock(mu_);
    if (canary_) canary = canary_->slot, commit = canary_->commit;
  }
  if (canary) {
    const auto began = std::chrono::steady_clock::now();
    router_.set_canary({}, 0);
    if (canary->app)
      router_.wait_in_flight(canary->app->ports,
                             began + std::chrono::milliseconds(cfg_.drain_timeout_ms), {});
    stop_app(*canary, "the daemon handed over to a new one, and a canary survives nothing");
    OpResult r;
    r.slot = std::string(1, canary->name);
    r.commit = commit;
    r.canary_ended = true;
    {
      std::lock_guard lock(mu_);
      r.previous_commit = live_ ? live_->commit : "";
      canary_.reset();
    }
    record("canary-abort", r, began, "the daemon was upgraded");
  }
  log::info("the apps now belong to the new daemon; this one leaves them running");
}

std::string App::status_line() const {
  const Status s = status();
  if (s.live_slot.empty()) return "nothing deployed yet";
  return fmt::format("live: slot {} {} {}{}", s.live_slot, s.live_commit.substr(0, 12),
                     s.healthy ? "healthy" : "NOT HEALTHY",
                     s.operation.empty() ? "" : fmt::format(" ({} at {})", s.operation, s.stage));
}

}  // namespace sm::app
