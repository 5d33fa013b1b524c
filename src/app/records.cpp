// What an App reports and keeps: its status, its history, where its logs are, and
// state.json (persist), read by restore() after a restart.

#include <fmt/format.h>

#include "app/app.h"
#include "app/app_internal.h"
#include "app/journal.h"
#include "app/state.h"
#include "log/log.h"

namespace sm::app {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

fs::path App::log_file(const std::string& which, std::string& error) const {
  if (which == "a" || which == "b") return log_path(slots_[which == "a" ? 0 : 1]);
  if (which != "live" && which != "previous") {
    error = fmt::format("unknown slot \"{}\"; use live, previous, a or b", which);
    return {};
  }
  std::lock_guard lock(mu_);
  const Slot* s = which == "live" ? live_ : previous_;
  if (!s) {
    error = fmt::format("there is no {} slot yet", which);
    return {};
  }
  return log_path(*s);
}

fs::path App::cron_log_file(const std::string& name, std::string& error) const {
  if (cron_) return cron_->log_file(name, error);
  error = fmt::format("there is no cron job \"{}\": this app has no \"cron\"", name);
  return {};
}

std::vector<nlohmann::json> App::history(size_t limit, size_t skip) const {
  return journal_read(paths_.data_dir / "journal.ndjson", limit, skip);
}

void App::persist() {
  std::lock_guard one_at_a_time(persist_mu_);
  PersistedState st;
  {
    std::lock_guard lock(mu_);
    if (live_ && !live_->commit.empty()) {
      SlotRecord r{live_->name, live_->commit, 0, "", 0, 0, live_since_, "", ""};
      if (live_->app) {
        r.pgid = live_->app->group.leader;
        r.token = live_->app->group.token;
        r.port = live_->app->ports.port;
        r.internal_port = live_->app->ports.internal_port;
      }
      st.live = r;
    }
    if (previous_ && !previous_->commit.empty()) {
      st.previous = SlotRecord{previous_->name, previous_->commit, 0, "", 0, 0, "", "", ""};
      if (const Running* a = previous_->app.get(); a && !a->standby.empty()) {
        st.previous->pgid = a->group.leader;
        st.previous->token = a->group.token;
        st.previous->port = a->ports.port;
        st.previous->internal_port = a->ports.internal_port;
        st.previous->standby = a->standby;
        st.previous->standby_until = rfc3339(a->standby_until);
      }
    }
    st.last_deploy_time = last_deploy_time_;
  }
  if (st.live) st.workers = workers_->records();
  try {
    save_state(paths_.data_dir, st);
  } catch (const std::exception& e) {
    log::info("warning: state not saved: {}", e.what());
  }
}

Status App::status() const {
  std::lock_guard lock(mu_);
  Status s;
  s.mode = router_.mode();
  s.operation = operation_;
  s.stage = stage_;
  s.operation_commit = operation_.empty() ? "" : operation_commit_;
  if (!operation_.empty()) s.operation_stages = operation_stages_;
  s.previous_replaced = previous_ ? "" : previous_replaced_;
  s.last_deploy_time = last_deploy_time_;
  if (live_) {
    s.live_slot = std::string(1, live_->name);
    s.live_commit = live_->commit;
    if (live_->app) {
      s.live_pid = live_->app->group.leader;
      s.live_ports = live_->app->ports;
    }
  }
  if (previous_) {
    s.previous_slot = std::string(1, previous_->name);
    s.previous_commit = previous_->commit;
  }
  s.healthy = healthy_ && live_ && live_->app && !exit_of(*live_->app);
  s.live_since = live_ ? live_since_ : "";
  s.live_uptime_s = live_ ? log::seconds_since(live_since_) : 0;
  s.daemon_uptime_s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - born_).count();
  s.crash_restarts = crash_restarts_;
  if (previous_ && previous_->app && !previous_->app->standby.empty()) {
    s.standby = previous_->app->standby;
    s.standby_until = rfc3339(previous_->app->standby_until);
    s.previous_pid = previous_->app->group.leader;
  }
  s.last_auto_rollback_time = last_auto_rollback_time_;
  s.last_auto_rollback_reason = last_auto_rollback_reason_;
  s.workers = workers_->status();
  s.paused = router_.pause_state();
  if (canary_) {
    const auto counts = router_.canary_counts().value_or(CanaryCounts{});
    const Running* c = canary_->slot->app.get();
    s.canary = CanaryStatus{canary_->commit,   std::string(1, canary_->slot->name),
                            canary_->since,    canary_->percent,
                            c ? c->group.leader : 0, c ? c->ports : Ports{},
                            counts.requests_new, counts.requests_old};
  }
  if (maintenance_) {
    s.maintenance = *maintenance_;
    s.maintenance->page.clear();
  }
  return s;
}

}  // namespace sm::app
