#include "app/app.h"

#include <sys/wait.h>

#include "app/journal.h"
#include "app/state.h"
#include "health/health.h"
#include "log/log.h"
#include "process/drain.h"
#include "process/process_group.h"

#include "app/app_internal.h"

namespace sm::app {
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::optional<int> App::exit_of(const Running& app) const {
  if (app.group.adopted) return process::is_alive(app.group.leader) ? std::nullopt : std::optional<int>(-1);
  return reaper_.exit_status(app.group.leader);
}

bool App::adopt(Slot& live, const SlotRecord& rec, Leftovers& leftovers) {
  auto it = leftovers.find(rec.token);
  if (rec.token.empty() || it == leftovers.end() || !process::is_alive(rec.pgid)) return false;
  auto p = health::probe_http(rec.internal_port, cfg_.health_endpoint, milliseconds(1000));
  if (!p.healthy) {
    log::info("the running app of slot {} is not healthy ({}); restarting it", live.name, p.detail);
    return false;
  }
  try {
    router_.switch_to({rec.port, rec.internal_port});
  } catch (const std::exception& e) {
    log::info("cannot route to the running app of slot {}: {}", live.name, e.what());
    return false;
  }
  auto app = std::make_unique<Running>();
  app->group = {rec.pgid, rec.token, true};
  app->ports = {rec.port, rec.internal_port};
  app->log_from = file_size_or_zero(log_path(live));
  {
    std::lock_guard lock(mu_);
    live.app = std::move(app);
    live_ = &live;
    healthy_ = true;
    ++live_generation_;
  }
  leftovers.erase(it);
  log::info("adopted the running app of slot {} ({}), pid {}", live.name, live.commit, rec.pgid);
  append_log(live, fmt::format("adopted by a new daemon (pid {})", getpid()));
  return true;
}

std::string App::restart_live(Slot& live) {
  set_stage("restart", "start");
  const Ports ports = router_.ports_for_new_process();
  std::string err = start_app(live, live.commit, ports);
  if (err.empty()) {
    try {
      router_.switch_to(ports);
    } catch (const std::exception& e) {
      err = fmt::format("cannot route traffic to it: {}", e.what());
    }
  }
  {
    std::lock_guard lock(mu_);
    live_ = &live;
    healthy_ = err.empty();
    ++live_generation_;
  }
  if (err.empty())
    log::info("restarted slot {} ({})", live.name, live.commit);
  else
    stop_app(live, "restart after a daemon restart failed");
  return err;
}

void App::restore() {
  const log::Scope scope(paths_.log_name);
  std::lock_guard op(op_mu_);
  ++op_id_;
  const auto began = Clock::now();
  restore_maintenance();  // before anything is routed: a request must not slip through
  auto loaded = load_state(paths_.data_dir);
  if (!loaded.warning.empty()) log::info("warning: {}", loaded.warning);
  const PersistedState st = loaded.state.value_or(PersistedState{});
  Slot* live = st.live ? &slot_named(st.live->slot) : nullptr;
  {
    std::lock_guard lock(mu_);
    last_deploy_time_ = st.last_deploy_time;
    if (st.previous) {
      slot_named(st.previous->slot).commit = st.previous->commit;
      previous_ = &slot_named(st.previous->slot);
    }
    if (live) {
      live->commit = st.live->commit;
      live_since_ = st.live->since;
    }
  }

  Leftovers leftovers = process::processes_by_token_prefix(token_prefix_);
  const bool adopted = live && adopt(*live, *st.live, leftovers);
  if (adopted) workers_->adopt(st.workers, worker_launch(*live, live->commit), leftovers);
  if (st.previous && previous_) adopt_standby(*previous_, *st.previous, leftovers);
  if (!leftovers.empty())
    log::info("killing {} process group(s) left by an earlier daemon", leftovers.size());
  for (auto& [token, pids] : leftovers)
    process::drain(reaper_, {-1, token, true}, milliseconds(cfg_.drain_timeout_ms));

  if (live) {
    OpResult r;
    r.slot = std::string(1, live->name);
    r.commit = live->commit;
    r.previous_commit = previous_ ? previous_->commit : "";
    if (!adopted) {
      if (std::string err = restart_live(*live); !err.empty())
        r = failed(r, fmt::format("restart of {}", live->commit.substr(0, 12)), "start", err);
      else
        workers_->replace(worker_launch(*live, live->commit));
      set_stage("", "");
    }
    record(adopted ? "adopt" : "restart", r, began, adopted ? nullptr : "daemon-start");
  }
  // Without usable state there is nothing to write yet; a corrupt file stays for a
  // human to look at until the next operation replaces it.
  if (loaded.state) persist();
}


}  // namespace sm::app
