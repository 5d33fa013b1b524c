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
  log::info("the apps now belong to the new daemon; this one leaves them running");
}

void App::end_canary_for_upgrade() {
  const auto began = std::chrono::steady_clock::now();
  if (const OpResult r = run_end_canary("", true); r.status == OpStatus::Ok)
    record("canary-abort", r, began, "the daemon was upgraded");
}

std::string App::status_line() const {
  const Status s = status();
  if (s.live_slot.empty()) return "nothing deployed yet";
  return fmt::format("live: slot {} {} {}{}", s.live_slot, s.live_commit.substr(0, 12),
                     s.healthy ? "healthy" : "NOT HEALTHY",
                     s.operation.empty() ? "" : fmt::format(" ({} at {})", s.operation, s.stage));
}

}  // namespace sm::app
