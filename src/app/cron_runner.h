#pragma once
// Scheduled jobs (contract §16): each "cron" entry's command runs in the live slot at the
// times of its schedule, never two runs of one job at once (a run still going at the next
// time: that time is skipped and logged). Each run is journalled "cron" with its exit
// code and duration (a failure notifies cron_failed); its output goes to
// <data>/cron/NAME.log. One thread per app that has jobs.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "app/events.h"
#include "app/slot_logs.h"
#include "app/workers.h"
#include "config/config.h"
#include "process/process_group.h"
#include "process/reaper.h"

namespace sm::app {

class CronRunner {
 public:
  /// Where a run starts: the live version's slot and environment; nothing when no
  /// version is live (the run is skipped).
  using LiveLaunch = std::function<std::optional<Workers::Launch>()>;

  CronRunner(const config::Config& cfg, process::Reaper& reaper, std::filesystem::path log_dir,
             std::string token_prefix, Events& events, LiveLaunch live, std::string log_name);
  ~CronRunner() { stop("the daemon is stopping"); }
  CronRunner(const CronRunner&) = delete;
  CronRunner& operator=(const CronRunner&) = delete;

  /// Ends the thread; a run still going is stopped (SIGTERM, drain_timeout_ms, SIGKILL)
  /// and journalled failed with `why`. Idempotent.
  void stop(const char* why);
  /// The log of job `name`, or "" with `error` set (no such job).
  std::filesystem::path log_file(const std::string& name, std::string& error) const;

 private:
  using SysClock = std::chrono::system_clock;
  struct Job {
    const config::Config::CronJob* entry;
    std::optional<SysClock::time_point> next;
    process::ProcessGroup running;  // leader -1 when not running
    std::string commit, slot;
    std::chrono::steady_clock::time_point began;
  };
  void loop();
  void start(Job& job, SysClock::time_point due);
  /// A run ended (`status`: its wait status; nothing when stopped with `why`).
  void finish(Job& job, std::optional<int> status, const std::string& why);

  const config::Config& cfg_;
  process::Reaper& reaper_;
  const NamedLogs logs_;
  const std::string token_prefix_;
  Events& events_;
  const LiveLaunch live_;
  const std::string log_name_;  // one of a server's apps: its name, in log lines
  std::vector<Job> jobs_;  // the thread's own
  std::atomic<bool> stop_{false};
  const char* stop_why_ = "";
  std::thread thread_;
};

}  // namespace sm::app
