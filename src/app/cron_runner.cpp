#include "app/cron_runner.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/wait.h>


#include "app/slot_logs.h"
#include "log/log.h"
#include "process/drain.h"
#include "process/spawn.h"

namespace sm::app {
using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

CronRunner::CronRunner(const config::Config& cfg, process::Reaper& reaper, std::filesystem::path log_dir,
                       std::string token_prefix, Events& events, LiveLaunch live, std::string log_name)
    : cfg_(cfg),
      reaper_(reaper),
      logs_(std::move(log_dir), static_cast<std::uintmax_t>(cfg.log_max_bytes), cfg.log_keep),
      token_prefix_(std::move(token_prefix)),
      events_(events),
      live_(std::move(live)),
      log_name_(std::move(log_name)) {
  logs_.create();
  const auto now = SysClock::now();
  for (const auto& entry : cfg_.cron) jobs_.push_back({&entry, entry.when.next(now), {}, "", "", {}});
  thread_ = std::thread([this] { loop(); });
}

void CronRunner::stop(const char* why) {
  if (!thread_.joinable()) return;
  stop_why_ = why;
  stop_ = true;
  reaper_.wake();
  thread_.join();
}

void CronRunner::start(Job& job, SysClock::time_point due) {
  const auto& e = *job.entry;
  const auto launch = live_();
  if (!launch) {
    logs_.note(e.name, "not run: no version is live");
    log::info("cron {}: not run: no version is live", e.name);
    return;
  }
  auto env = launch->env;
  env["SLOT_MACHINE_CRON"] = e.name;
  logs_.note(e.name, fmt::format("run {} in slot {} (due {}): {}", launch->commit, launch->slot,
                           log::rfc3339(SysClock::to_time_t(due)), e.command));
  job.commit = launch->commit;
  job.slot = std::string(1, launch->slot);
  job.began = Steady::now();
  try {
    job.running = process::spawn(reaper_, {e.command, launch->cwd, logs_.of(e.name), env, token_prefix_, launch->uid,
                                           launch->gid});
  } catch (const std::exception& ex) {
    job.running = {};
    finish(job, std::nullopt, fmt::format("could not start: {}", ex.what()));
  }
}

void CronRunner::finish(Job& job, std::optional<int> status, const std::string& why) {
  const auto& e = *job.entry;
  const long long ms = std::chrono::duration_cast<milliseconds>(Steady::now() - job.began).count();
  int code = -1;
  std::string detail = why;
  if (status) {
    code = WIFEXITED(*status) ? WEXITSTATUS(*status) : WIFSIGNALED(*status) ? 128 + WTERMSIG(*status) : -1;
    detail = process::describe_exit(*status);
  }
  const bool ok = status && code == 0;
  logs_.note(e.name, fmt::format("{} after {} ms", detail, ms));
  if (!ok) log::info("cron {}: failed: {} after {} ms", e.name, detail, ms);
  events_.publish({EventKind::Finished, 0,
                   {{"time", log::now_rfc3339()},
                    {"action", "cron"},
                    {"job", e.name},
                    {"command", e.command},
                    {"commit", job.commit},
                    {"slot", job.slot},
                    {"previous_commit", ""},
                    {"duration_ms", ms},
                    {"exit_code", code},
                    {"result", ok ? "ok" : "failed"},
                    {"detail", detail}}});
  job.running = {};
}

void CronRunner::loop() {
  const log::Scope scope(log_name_);
  while (!stop_) {
    const uint64_t seen = reaper_.generation();
    const auto now = SysClock::now();
    auto wake = Steady::now() + std::chrono::seconds(1);  // the wall clock may jump: look again each second
    for (Job& job : jobs_) {
      if (job.running.leader > 0) {
        if (const auto st = reaper_.exit_status(job.running.leader)) {
          const auto group = job.running;
          finish(job, st, "");
          process::drain(reaper_, group, milliseconds(0));  // what it left in the background goes too
        }
      }
      if (!job.next || now < *job.next) {
        if (job.next) wake = std::min(wake, Steady::now() + (*job.next - now));
        continue;
      }
      const auto due = *job.next;
      job.next = job.entry->when.next(now);  // @every: counted from this run
      if (job.running.leader > 0) {
        logs_.note(job.entry->name, fmt::format("run due {} skipped: the one before is still running",
                                          log::rfc3339(SysClock::to_time_t(due))));
        log::info("cron {}: the run due {} skipped: the one before is still running", job.entry->name,
                  log::rfc3339(SysClock::to_time_t(due)));
        continue;
      }
      start(job, due);
    }
    std::vector<std::string> names;
    for (const auto& j : jobs_) names.push_back(j.entry->name);
    logs_.rotate(names);
    reaper_.wait_change(seen, wake);
  }
  for (Job& job : jobs_) {
    if (job.running.leader <= 0) continue;
    const auto d = process::drain(reaper_, job.running, milliseconds(cfg_.drain_timeout_ms));
    finish(job, std::nullopt, fmt::format("stopped: {} ({})", stop_why_, process::describe(d, milliseconds(cfg_.drain_timeout_ms))));
  }
}

std::filesystem::path CronRunner::log_file(const std::string& name, std::string& error) const {
  for (const auto& e : cfg_.cron)
    if (e.name == name) return logs_.of(name);
  std::vector<std::string> names;
  for (const auto& e : cfg_.cron) names.push_back(e.name);
  error = names.empty() ? fmt::format("there is no cron job \"{}\": this app has no \"cron\"", name)
                        : fmt::format("there is no cron job \"{}\"; this app's jobs: {}", name, fmt::join(names, ", "));
  return {};
}

}  // namespace sm::app
