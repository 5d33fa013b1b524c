#include "app/app.h"

#include <fmt/format.h>

#include "app/app_internal.h"
#include "log/log.h"

namespace sm::app {
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

OpResult App::restart_crashed(const std::string& slot, const std::string& commit) {
  const OpResult r = on_op_thread("restart", {}, [&] {
    {
      std::lock_guard lock(mu_);
      const bool down = live_ && !slot.empty() && live_->name == slot.front() && live_->commit == commit &&
                        (!live_->app || exit_of(*live_->app));
      if (!down)
        return refused(OpStatus::Invalid, "not needed: another version is live, or it runs again");
    }
    return run_restart(false);  // the workers run on
  }, {std::chrono::hours(24), {}}, "crashed");
  if (r.status == OpStatus::Ok) ++crash_restarts_;
  if (r.status == OpStatus::Ok || r.status == OpStatus::Failed)
    log::info("crash restart of slot {}: {}", slot, r.status == OpStatus::Ok ? "running again" : r.error);
  return r;
}

OpResult App::run_restart(bool workers) {
  Slot* live;
  {
    std::lock_guard lock(mu_);
    live = live_;
  }
  if (!live || live->commit.empty())
    return refused(OpStatus::Invalid, "nothing is live: restart starts the live version again; "
                                      "deploy something first");
  const std::string commit = live->commit;
  log::info("restart of {} in slot {}", commit, live->name);
  const auto started = Clock::now();

  OpResult r;
  r.slot = std::string(1, live->name);
  r.commit = commit;
  {
    std::lock_guard lock(mu_);
    r.previous_commit = previous_ ? previous_->commit : "";
  }
  auto fail = [&](const std::string& stage, const std::string& error) {
    return failed(r, fmt::format("restart of {}", commit.substr(0, 12)), stage, error);
  };
  const Ports ports = router_.ports_for_new_process();

  if (router_.must_drain_before_start()) {  // direct: the port is the app's, one at a time
    drain_first_if_needed(live, "restart");
    if (cancelled_) return fail("drain", kCancelledError + undo_failed_start(*live, live, true));
    set_stage("restart", "start");
    if (auto err = start_app(*live, commit, ports); !err.empty())
      return fail(live->app ? "health" : "start", err + undo_failed_start(*live, live, true));
    if (auto err = switch_and_retire(ports, live, true, "restart"); !err.empty())
      return fail(cancelled_ ? stage_now() : "switch", err + undo_failed_start(*live, live, true));
  } else {
    // The new process boots in a stand-in for the live slot (same name: same directory
    // and log) while the old one keeps serving from the slot itself.
    Slot fresh{live->name, commit, nullptr};
    set_stage("restart", "start");
    if (auto err = start_app(fresh, commit, ports); !err.empty()) {
      const std::string stage = fresh.app ? "health" : "start";
      stop_app(fresh, "it failed to come up");
      return fail(stage, err);
    }
    if (auto err = switch_and_retire(ports, live, false, "restart"); !err.empty()) {
      stop_app(fresh, "the restart did not complete");
      return fail(cancelled_ ? stage_now() : "switch", err);
    }
    std::lock_guard lock(mu_);
    live->app = std::move(fresh.app);
  }
  {
    // Live again, as a promotion, but the deploy time stays: only the process changed.
    std::lock_guard lock(mu_);
    healthy_ = true;
    ++live_generation_;
    live_since_ = log::now_rfc3339();
    operation_.clear();
    stage_.clear();
    cancellable_ = false;
  }
  if (workers) workers_->replace(worker_launch(*live, commit));
  persist();
  log::info("restarted {} in slot {} in {} ms", commit, live->name,
            std::chrono::duration_cast<milliseconds>(Clock::now() - started).count());
  return r;
}

}  // namespace sm::app
