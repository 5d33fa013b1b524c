#include "metrics/exporter.h"

#include <algorithm>

#include "metrics/exposition.h"
#include "proxy/proxy.h"
#include "version/version.h"

namespace sm::metrics {
namespace {

constexpr const char* kActions[] = {"deploy",         "rollback", "auto-rollback", "restart", "adopt",
                                    "worker-restart", "cron",     "canary",        "promote", "canary-abort"};
constexpr const char* kResults[] = {"ok", "failed", "cancelled"};
constexpr const char* kRestartReasons[] = {"crashed", "requested", "daemon-start"};

std::string key(const std::string& action, const std::string& result) { return action + " " + result; }

}  // namespace

std::map<std::string, std::atomic<uint64_t>> OperationCounters::make_finished() {
  std::map<std::string, std::atomic<uint64_t>> m;
  for (const char* a : kActions)
    for (const char* r : kResults) m[key(a, r)] = 0;
  return m;
}

std::map<std::string, std::atomic<uint64_t>> OperationCounters::make_restarts() {
  std::map<std::string, std::atomic<uint64_t>> m;
  for (const char* r : kRestartReasons) m[r] = 0;
  return m;
}

void OperationCounters::count(const app::Event& e) {
  if (e.kind != app::EventKind::Finished) return;
  const std::string action = e.fields.value("action", "");
  const std::string result = e.fields.value("result", "");
  if (auto it = finished_.find(key(action, result)); it != finished_.end()) bump(it->second);
  if (action == "deploy")
    deploy_seconds_.observe(static_cast<double>(e.fields.value("duration_ms", 0LL)) / 1000.0);
  if (action == "restart" && result == "ok")
    if (auto it = restarts_.find(e.fields.value("reason", "")); it != restarts_.end()) bump(it->second);
}

uint64_t OperationCounters::finished(const std::string& action, const std::string& result) const {
  const auto it = finished_.find(key(action, result));
  return it == finished_.end() ? 0 : it->second.load(std::memory_order_relaxed);
}

uint64_t OperationCounters::restarts(const std::string& reason) const {
  const auto it = restarts_.find(reason);
  return it == restarts_.end() ? 0 : it->second.load(std::memory_order_relaxed);
}

void Exporter::watch(const std::string& name, std::shared_ptr<app::App> app) {
  std::lock_guard lock(mu_);
  for (auto& w : apps_)
    if (w->name == name) {  // a reload replaced the app: its counts go on
      w->listening.reset();
      w->app = std::move(app);
      w->listening = w->app->events().subscribe([ops = &w->ops](const app::Event& e) { ops->count(e); });
      return;
    }
  auto w = std::make_unique<Watched>();
  w->name = name;
  w->app = std::move(app);
  w->listening = w->app->events().subscribe([ops = &w->ops](const app::Event& e) { ops->count(e); });
  apps_.push_back(std::move(w));
  std::sort(apps_.begin(), apps_.end(), [](const auto& a, const auto& b) { return a->name < b->name; });
}

void Exporter::forget(const std::string& name) {
  std::lock_guard lock(mu_);
  std::erase_if(apps_, [&](const auto& a) { return a->name == name; });
}

std::string Exporter::scrape() const {
  std::lock_guard lock(mu_);
  std::vector<app::Status> status;
  for (const auto& a : apps_) status.push_back(a->app->status());
  // Each sample of app `i`, with its `app` label first when there are several.
  auto labelled = [&](size_t i, Labels l) {
    if (by_app_) l.insert(l.begin(), {"app", apps_[i]->name});
    return l;
  };
  Exposition x;
  x.gauge("slot_machine_build_info", "The daemon's version and routing mode (always 1).",
          {{{{"version", kVersion}, {"mode", status.empty() ? "proxy" : status.front().mode}}, 1}});

  std::vector<Sample> deploys, rollbacks, restarts, healthy, live_info, uptime, standby, running, workers_up,
      worker_restarts, cron_runs, canary_percent, canary_requests, canary_ends;
  std::vector<std::pair<Labels, HistogramSnapshot>> durations;
  for (size_t i = 0; i < apps_.size(); ++i) {
    const OperationCounters& ops = apps_[i]->ops;
    const app::Status& s = status[i];
    for (const char* r : kResults) {
      deploys.push_back({labelled(i, {{"result", r}}), static_cast<double>(ops.finished("deploy", r))});
      rollbacks.push_back(
          {labelled(i, {{"result", r}, {"trigger", "manual"}}), static_cast<double>(ops.finished("rollback", r))});
      rollbacks.push_back(
          {labelled(i, {{"result", r}, {"trigger", "auto"}}), static_cast<double>(ops.finished("auto-rollback", r))});
    }
    durations.emplace_back(labelled(i, {}), ops.deploy_durations());
    for (const char* r : kRestartReasons)
      restarts.push_back({labelled(i, {{"reason", r}}), static_cast<double>(ops.restarts(r))});
    const bool live = !s.live_slot.empty();
    healthy.push_back({labelled(i, {}), live && s.healthy ? 1.0 : 0.0});
    if (live) live_info.push_back({labelled(i, {{"slot", s.live_slot}, {"commit", s.live_commit}}), 1});
    uptime.push_back({labelled(i, {}), static_cast<double>(live ? s.live_uptime_s : 0)});
    standby.push_back({labelled(i, {{"kind", "warm"}}), s.standby == "warm" ? 1.0 : 0.0});
    standby.push_back({labelled(i, {{"kind", "frozen"}}), s.standby == "frozen" ? 1.0 : 0.0});
    running.push_back({labelled(i, {}), s.operation.empty() ? 0.0 : 1.0});
    for (const auto& w : s.workers) workers_up.push_back({labelled(i, {{"worker", w.name}}), w.pid ? 1.0 : 0.0});
    worker_restarts.push_back({labelled(i, {}), static_cast<double>(ops.finished("worker-restart", "ok"))});
    for (const char* r : {"ok", "failed"})
      cron_runs.push_back({labelled(i, {{"result", r}}), static_cast<double>(ops.finished("cron", r))});
    canary_percent.push_back({labelled(i, {}), s.canary ? static_cast<double>(s.canary->percent) : 0.0});
    if (s.canary) {
      canary_requests.push_back({labelled(i, {{"side", "new"}}), static_cast<double>(s.canary->requests_new)});
      canary_requests.push_back({labelled(i, {{"side", "old"}}), static_cast<double>(s.canary->requests_old)});
    }
    canary_ends.push_back({labelled(i, {{"how", "promote"}}), static_cast<double>(ops.finished("promote", "ok"))});
    canary_ends.push_back({labelled(i, {{"how", "abort"}}), static_cast<double>(ops.finished("canary-abort", "ok"))});
  }
  x.counter("slot_machine_deploys_total", "Deploys that ran since the daemon started, by result.", deploys);
  x.counter("slot_machine_rollbacks_total",
            "Rollbacks that ran since the daemon started, by result and trigger (manual: asked "
            "for; auto: auto_rollback_s).",
            rollbacks);
  x.histograms("slot_machine_deploy_duration_seconds", "How long deploys took, from request to answer.", durations);
  x.counter("slot_machine_app_restarts_total",
            "Times the live app was started again in place, by reason (crashed: restart on "
            "failure; requested: the restart command; daemon-start: found stopped at start).",
            restarts);
  x.gauge("slot_machine_live_healthy", "1 when the live app answers its health check, else 0 (also when nothing is live).",
          healthy);
  x.gauge("slot_machine_live_info", "The live slot and commit (1; no sample when nothing is live).", live_info);
  x.gauge("slot_machine_live_uptime_seconds", "Seconds since the live version became live.", uptime);
  x.gauge("slot_machine_standby", "1 while the previous app runs on as a standby, by kind (warm, frozen).", standby);
  x.gauge("slot_machine_operation_running", "1 while a deploy, rollback or restart runs.", running);
  x.gauge("slot_machine_worker_up", "1 while a worker of the live version runs, 0 while it waits to start again.",
          workers_up);
  x.counter("slot_machine_worker_restarts_total", "Times a worker that exited was started again.", worker_restarts);
  x.counter("slot_machine_cron_runs_total", "Cron job runs that ended, by result (failed: a non-zero exit).",
            cron_runs);
  x.gauge("slot_machine_canary_percent", "The share of new visitors a running canary gets (0: none runs).",
          canary_percent);
  x.counter("slot_machine_canary_requests_total",
            "Requests the running canary's split sent to each side (new, old) since it began (no sample without one).",
            canary_requests);
  x.counter("slot_machine_canaries_ended_total", "Canaries that ended, by how (promote; abort: rollback or failed).",
            canary_ends);

  if (proxy_) {
    const proxy::Stats p = proxy_->stats();
    std::vector<Sample> by_code;
    for (size_t i = 0; i < p.responses.size(); ++i)
      by_code.push_back({{{"code", std::to_string(i + 1) + "xx"}}, static_cast<double>(p.responses[i])});
    x.counter("slot_machine_proxy_requests_total",
              "Requests the proxy answered (the app's answers and its own), by status class.", by_code);
    x.histogram("slot_machine_proxy_request_duration_seconds",
                "Seconds from a request's header read to its answer written.", p.duration);
    x.gauge("slot_machine_proxy_open_connections", "Client connections open to the proxy.",
            {{{}, static_cast<double>(p.open_connections)}});
    x.counter("slot_machine_proxy_upgrades_total", "Upgrade (WebSocket) tunnels the proxy opened.",
              {{{}, static_cast<double>(p.upgrades)}});
    if (by_app_) {  // several apps: each one's share of the requests
      std::vector<Sample> app_codes;
      std::vector<std::pair<Labels, HistogramSnapshot>> app_durations;
      for (const auto& [name, st] : proxy_->app_stats()) {
        for (size_t i = 0; i < st.responses.size(); ++i)
          app_codes.push_back(
              {{{"app", name}, {"code", std::to_string(i + 1) + "xx"}}, static_cast<double>(st.responses[i])});
        app_durations.emplace_back(Labels{{"app", name}}, st.duration);
      }
      x.counter("slot_machine_app_requests_total",
                "Requests for each app's hosts the proxy answered (the app's answers and its own: 503 while "
                "nothing is live, 308 to its canonical host), by status class.",
                app_codes);
      x.histograms("slot_machine_app_request_duration_seconds",
                   "Seconds from a request's header read to its answer written, by app.", app_durations);
    }
  }
  return x.text();
}

}  // namespace sm::metrics
