// Canary (contract §14): a deploy that stops before its switch, its new version serving
// a share of new visitors beside live; promote finishes it with the switch a deploy
// would have made, rollback (or the canary failing) ends it. The same steps as the
// deploy story, not a second state machine: the split itself is the proxy's route.

#include <fmt/format.h>

#include "app/app.h"
#include "app/app_internal.h"
#include "log/log.h"

namespace sm::app {
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::optional<OpResult> App::refuse_during_canary() const {
  std::lock_guard lock(mu_);
  if (!canary_) return std::nullopt;
  return refused(OpStatus::Busy,
                 fmt::format("a canary of {} runs ({}% of new visitors, since {}): promote it (slot-machine promote) "
                             "or end it (slot-machine rollback) first, or deploy with --wait to queue behind it",
                             canary_->commit.substr(0, 12), canary_->percent, canary_->since));
}

std::string App::begin_canary(Slot& target, const std::string& commit, const Ports& ports, int percent) {
  set_stage("deploy", "canary");
  try {
    if (!router_.set_canary(ports, percent)) return "a canary needs proxy mode";
  } catch (const std::exception& e) {
    return fmt::format("cannot route traffic to the canary: {}", e.what());
  }
  std::lock_guard lock(mu_);
  target.commit = commit;
  canary_ = CanaryRun{&target, commit, log::now_rfc3339(), percent};
  operation_.clear();
  stage_.clear();
  cancellable_ = false;
  return "";
}

OpResult App::promote_canary(Progress progress, const Wait& wait) {
  return on_op_thread("promote", std::move(progress), [this] { return run_promote(); }, wait);
}

OpResult App::abort_canary(const std::string& commit, const std::string& reason) {
  return on_op_thread("canary-abort", {}, [&] { return run_end_canary(commit); }, {std::chrono::hours(24), {}},
                      reason.c_str());
}

OpResult App::run_promote() {
  Slot* old_live;
  Slot* target;
  OpResult r;
  {
    std::lock_guard lock(mu_);
    if (!canary_)
      return refused(OpStatus::Conflict,
                     "nothing to promote: no canary runs; start one with slot-machine deploy REV --canary PERCENT");
    target = canary_->slot;
    old_live = live_;
    r.slot = std::string(1, target->name);
    r.commit = canary_->commit;
    r.previous_commit = old_live ? old_live->commit : "";
    operation_commit_ = r.commit;
  }
  past_cancel_point();  // a promote is a switch: nothing to undo once it starts
  log::info("promote: the canary {} in slot {} becomes live", r.commit, target->name);
  const auto started = Clock::now();
  if (auto err = switch_and_retire(target->app->ports, old_live, false, "promote", true); !err.empty())
    return failed(r, fmt::format("promote of {}", r.commit.substr(0, 12)), "switch", err);
  {
    std::lock_guard lock(mu_);
    canary_.reset();
  }
  canary_ended_.notify_all();
  promote(*target, old_live);
  persist();
  log::info("promoted {} in slot {} in {} ms", r.commit, target->name,
            std::chrono::duration_cast<milliseconds>(Clock::now() - started).count());
  return r;
}

OpResult App::run_end_canary(const std::string& commit, bool handing_over) {
  Slot* slot;
  OpResult r;
  {
    std::lock_guard lock(mu_);
    if (!canary_ || (!commit.empty() && canary_->commit != commit))
      return refused(OpStatus::Invalid, "not needed: that canary has ended already");
    slot = canary_->slot;
    r.slot = std::string(1, slot->name);
    r.commit = canary_->commit;
    r.previous_commit = live_ ? live_->commit : "";
    r.canary_ended = true;
    operation_commit_ = r.commit;
  }
  past_cancel_point();
  set_stage("canary-abort", "switch");
  router_.set_canary({}, 0);  // everyone to live from the next request on
  if (slot->app) {
    set_stage("canary-abort", "drain");
    router_.wait_in_flight(slot->app->ports, Clock::now() + milliseconds(cfg_.drain_timeout_ms),
                           [this, handing_over] { return !handing_over && stopping_; });
  }
  stop_app(*slot, "its canary ended");
  {
    std::lock_guard lock(mu_);
    canary_.reset();
  }
  canary_ended_.notify_all();
  set_stage("", "");
  log::info("the canary {} in slot {} ended; everyone is on live {}", r.commit, slot->name,
            r.previous_commit.substr(0, 12));
  return r;
}

}  // namespace sm::app
