#include "app/workers.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>

#include <thread>

#include "app/slot_logs.h"
#include "log/log.h"
#include "process/drain.h"
#include "process/spawn.h"

namespace sm::app {
using std::chrono::milliseconds;

Workers::Workers(const config::Config& cfg, process::Reaper& reaper, std::filesystem::path log_dir,
                 std::string token_prefix, Events& events)
    : cfg_(cfg),
      reaper_(reaper),
      logs_(std::move(log_dir), static_cast<std::uintmax_t>(cfg.log_max_bytes), cfg.log_keep),
      token_prefix_(std::move(token_prefix)),
      events_(events) {}

void Workers::start(Worker& w) {
  auto env = launch_.env;
  env["SLOT_MACHINE_WORKER"] = w.name;
  logs_.note(w.name, fmt::format("start {} in slot {}: {}", launch_.commit, launch_.slot, w.command));
  try {
    w.group = process::spawn(reaper_, {w.command, launch_.cwd, logs_.of(w.name), env, token_prefix_, launch_.uid,
                                       launch_.gid});
    w.since = log::now_rfc3339();
    w.restart_at.reset();
  } catch (const std::exception& e) {
    w.group = {};
    w.since.clear();
    w.last_exit = fmt::format("could not start: {}", e.what());
    w.restart_at = Clock::now() + w.backoff.next(Clock::now());
    logs_.note(w.name, w.last_exit);
    log::info("worker {}: {}", w.name, w.last_exit);
  }
}

void Workers::drain(std::vector<Worker> workers, const char* why) {
  // All at once: each gets drain_timeout_ms, not the sum of them.
  std::vector<std::thread> drains;
  for (auto& w : workers) {
    if (w.group.leader <= 0) continue;
    drains.emplace_back([this, &w, why] {
      const auto d = process::drain(reaper_, w.group, milliseconds(cfg_.drain_timeout_ms));
      const std::string how = process::describe(d, milliseconds(cfg_.drain_timeout_ms));
      logs_.note(w.name, fmt::format("stopped ({}): {} in {} ms", why, how, d.took.count()));
      log::info("worker {}: stopped ({}): {} in {} ms", w.name, why, how, d.took.count());
    });
  }
  for (auto& t : drains) t.join();
}

void Workers::replace(const Launch& launch) {
  std::vector<Worker> old;
  {
    std::lock_guard lock(mu_);
    old = std::move(workers_);
    workers_.clear();
    launch_ = launch;
    if (!cfg_.workers.empty()) logs_.create();
    for (const auto& [name, command] : cfg_.workers) {
      Worker& w = workers_.emplace_back();
      w.name = name;
      w.command = command;
      start(w);
    }
  }
  drain(std::move(old), "another version's workers replaced them");
}

void Workers::stop_all(const char* why) {
  std::vector<Worker> old;
  {
    std::lock_guard lock(mu_);
    old = std::move(workers_);
    workers_.clear();
  }
  drain(std::move(old), why);
}

void Workers::adopt(const std::vector<WorkerRecord>& recorded, const Launch& launch,
                    std::map<std::string, std::vector<pid_t>>& leftovers) {
  std::lock_guard lock(mu_);
  workers_.clear();
  launch_ = launch;
  if (!cfg_.workers.empty()) logs_.create();
  for (const auto& configured : cfg_.workers) {  // not a structured binding: clang 14 cannot capture one
    const std::string& name = configured.first;
    const std::string& command = configured.second;
    Worker& w = workers_.emplace_back();
    w.name = name;
    w.command = command;
    const auto rec = std::find_if(recorded.begin(), recorded.end(), [&](const WorkerRecord& r) {
      return r.name == name && r.command == command && r.commit == launch.commit && !r.token.empty() &&
             leftovers.count(r.token) && process::is_alive(r.pgid);
    });
    if (rec == recorded.end()) {
      start(w);
      continue;
    }
    w.group = {rec->pgid, rec->token, true};
    w.since = rec->since;
    w.restarts = rec->restarts;
    leftovers.erase(rec->token);
    logs_.note(name, fmt::format("adopted by a new daemon (pid {})", getpid()));
    log::info("adopted worker {}, pid {}", name, rec->pgid);
  }
}

bool Workers::tend() {
  std::vector<Event> happened;
  std::vector<process::ProcessGroup> leftovers;  // what an exited worker left behind
  {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    for (Worker& w : workers_) {
      if (w.group.leader > 0 && !w.restart_at) {
        std::optional<int> st;
        if (w.group.adopted)
          st = process::is_alive(w.group.leader) ? std::nullopt : std::optional<int>(-1);
        else
          st = reaper_.exit_status(w.group.leader);
        if (!st) continue;
        w.last_exit = *st == -1 ? "exited" : process::describe_exit(*st);
        const auto wait = w.backoff.next(now);
        w.restart_at = now + wait;
        logs_.note(w.name, fmt::format("{}; started again in {} s", w.last_exit, wait.count()));
        log::info("worker {} {}; starting it again in {} s", w.name, w.last_exit, wait.count());
        leftovers.push_back(w.group);
        w.group = {};
        happened.push_back({EventKind::WorkerExited, 0,
                            {{"worker", w.name},
                             {"slot", std::string(1, launch_.slot)},
                             {"commit", launch_.commit},
                             {"detail", w.last_exit},
                             {"restart_in_s", wait.count()}}});
      } else if (w.restart_at && now >= *w.restart_at) {
        start(w);
        if (w.group.leader <= 0) continue;
        ++w.restarts;
        w.backoff.restarted(now);
        happened.push_back({EventKind::Finished, 0,
                            {{"time", log::now_rfc3339()},
                             {"action", "worker-restart"},
                             {"worker", w.name},
                             {"commit", launch_.commit},
                             {"slot", std::string(1, launch_.slot)},
                             {"previous_commit", launch_.commit},
                             {"duration_ms", 0},
                             {"result", "ok"},
                             {"detail", w.last_exit},
                             {"restarts", w.restarts}}});
      }
    }
  }
  // A worker that exited leaves nothing behind (its setsid children included).
  for (const auto& group : leftovers) process::drain(reaper_, group, milliseconds(0));
  bool restarted = false;
  for (const auto& e : happened) {
    restarted = restarted || e.kind == EventKind::Finished;
    events_.publish(e);
  }
  std::vector<std::string> names;
  for (const auto& [name, _] : cfg_.workers) names.push_back(name);
  logs_.rotate(names);
  return restarted;
}

std::vector<WorkerRecord> Workers::records() const {
  std::lock_guard lock(mu_);
  std::vector<WorkerRecord> out;
  for (const Worker& w : workers_)
    if (w.group.leader > 0)
      out.push_back({w.name, w.command, launch_.commit, w.group.leader, w.group.token, w.since, w.restarts});
  return out;
}

std::vector<WorkerStatus> Workers::status() const {
  std::lock_guard lock(mu_);
  std::vector<WorkerStatus> out;
  for (const Worker& w : workers_)
    out.push_back({w.name, w.group.leader > 0 ? w.group.leader : 0, w.group.leader > 0 ? w.since : "", w.restarts,
                   w.last_exit});
  return out;
}

std::filesystem::path Workers::log_file(const std::string& name, std::string& error) const {
  if (!cfg_.workers.count(name)) {
    std::vector<std::string> names;
    for (const auto& [n, _] : cfg_.workers) names.push_back(n);
    error = names.empty() ? fmt::format("there is no worker \"{}\": this app has no \"workers\"", name)
                          : fmt::format("there is no worker \"{}\"; this app's workers: {}", name,
                                        fmt::join(names, ", "));
    return {};
  }
  return logs_.of(name);
}

}  // namespace sm::app
