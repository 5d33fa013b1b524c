// Standby (contract §10, "standby": "warm" | "frozen", proxy mode): the app a deploy or
// rollback replaces finishes its requests and then stays up, unrouted (or SIGSTOPped),
// for standby_ttl_s, so that a rollback to it only switches the proxy: same pid, nothing
// started, one health probe.

#include <signal.h>

#include <fmt/format.h>

#include <ctime>

#include "app/app.h"
#include "app/app_internal.h"
#include "app/state.h"
#include "health/health.h"
#include "log/log.h"
#include "process/drain.h"

namespace sm::app {
using std::chrono::milliseconds;
using SystemClock = std::chrono::system_clock;

void App::park(Slot& slot) {
  std::lock_guard lock(mu_);
  if (!slot.app) return;
  slot.app->standby = cfg_.standby;
  slot.app->standby_until = SystemClock::now() + std::chrono::seconds(cfg_.standby_ttl_s);
  if (cfg_.standby == "frozen") process::signal_group(slot.app->group, SIGSTOP);
  log::info("slot {}: kept as a {} standby (pid {}) until {}", slot.name, cfg_.standby, slot.app->group.leader,
            rfc3339(slot.app->standby_until));
  append_log(slot, fmt::format("kept as a {} standby until {}", cfg_.standby, rfc3339(slot.app->standby_until)));
}

std::string App::rollback_to_standby(Slot& target, Slot* old_live, bool automatic) {
  Ports ports;
  int port = 0;
  {
    std::lock_guard lock(mu_);
    if (!target.app || target.app->standby.empty()) return "no standby";
    if (target.app->standby == "frozen") process::signal_group(target.app->group, SIGCONT);
    target.app->standby.clear();
    ports = target.app->ports;
    port = ports.internal_port;
  }
  set_stage("rollback", "health");
  const auto p = health::probe_http(port, cfg_.health_endpoint, milliseconds(1000));
  if (!p.healthy) return fmt::format("the standby did not pass its health probe ({})", p.detail);
  const bool keep_old = !automatic && cfg_.standby != "off";
  return switch_and_retire(ports, old_live, false, "rollback", keep_old);
}

void App::tend_standby() {
  std::unique_ptr<Running> expired;
  char name = 0;
  {
    // Not while an operation runs (it decides about the standby itself); and the drain
    // below happens after the lock is given back, so no operation waits for it.
    std::unique_lock op(op_mu_, std::try_to_lock);
    if (!op.owns_lock() || stopping_ || handed_over_) return;
    {
      std::lock_guard lock(mu_);
      if (!previous_ || !previous_->app || previous_->app->standby.empty()) return;
      name = previous_->name;
      if (exit_of(*previous_->app)) {
        log::info("slot {}: the standby exited; a rollback will start it again", name);
        previous_->app.reset();
      } else if (SystemClock::now() >= previous_->app->standby_until) {
        expired = std::move(previous_->app);
      } else {
        return;
      }
    }
    persist();
  }
  if (!expired) return;
  const auto d = process::drain(reaper_, expired->group, milliseconds(cfg_.drain_timeout_ms));
  log::info("slot {}: standby stopped (its standby_ttl_s of {} s is over) in {} ms", name, cfg_.standby_ttl_s,
            d.took.count());
  append_log(slot_named(name), fmt::format("standby stopped: standby_ttl_s={} is over", cfg_.standby_ttl_s));
}

void App::adopt_standby(Slot& previous, const SlotRecord& rec, Leftovers& leftovers) {
  auto it = leftovers.find(rec.token);
  if (rec.standby.empty() || rec.token.empty() || it == leftovers.end() || !process::is_alive(rec.pgid)) return;
  const auto parsed = log::parse_rfc3339(rec.standby_until);
  const auto until = SystemClock::from_time_t(parsed.value_or(0));
  if (!parsed || until <= SystemClock::now()) return;  // over: killed with the leftovers
  auto app = std::make_unique<Running>();
  app->group = {rec.pgid, rec.token, true};
  app->ports = {rec.port, rec.internal_port};
  app->standby = rec.standby;
  app->standby_until = until;
  {
    std::lock_guard lock(mu_);
    previous.app = std::move(app);
  }
  leftovers.erase(it);
  log::info("adopted the {} standby of slot {} ({}), pid {}, until {}", rec.standby, previous.name, previous.commit,
            rec.pgid, rec.standby_until);
}

OpResult App::auto_rollback(const std::string& slot, const std::string& commit, const std::string& reason) {
  const OpResult r = on_op_thread("auto-rollback", {}, [&] {
    {
      std::lock_guard lock(mu_);
      const bool still = live_ && !slot.empty() && live_->name == slot.front() && live_->commit == commit;
      if (!still) return refused(OpStatus::Invalid, "not needed: another version is live");
    }
    log::info("auto-rollback: {}", reason);
    return run_rollback(true);
  }, {std::chrono::hours(24), {}}, reason.c_str());
  if (r.status == OpStatus::Ok || r.status == OpStatus::Failed) {
    std::lock_guard lock(mu_);
    last_auto_rollback_time_ = log::now_rfc3339();
    last_auto_rollback_reason_ = reason;
  }
  if (r.status == OpStatus::Ok || r.status == OpStatus::Failed)
    log::info("auto-rollback from slot {}: {}", slot, r.status == OpStatus::Ok ? "done" : r.error);
  return r;
}

}  // namespace sm::app
