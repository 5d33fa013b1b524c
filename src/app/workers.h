#pragma once
// Workers (contract §16): the live version's processes beside the web one (job queues,
// consumers), one process group per name. Started in the live slot once a switch is
// done, the ones before them drained after; one that exits is started again with the
// crash backoff of §10. Knows nothing of deploys: App calls replace() and stop_all().

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "app/crash_restart.h"
#include "app/events.h"
#include "app/slot_logs.h"
#include "app/state.h"
#include "config/config.h"
#include "process/process_group.h"
#include "process/reaper.h"

namespace sm::app {

/// A worker as /status shows it.
struct WorkerStatus {
  std::string name;
  pid_t pid = 0;       // 0 while waiting to be started again
  std::string since;   // RFC 3339: when this process started ("" while waiting)
  int restarts = 0;    // started again after exiting, since this version went live
  std::string last_exit;  // how it last exited ("" when never)
};

class Workers {
 public:
  /// Where and how the workers of one version start: its slot and environment.
  struct Launch {
    char slot = 0;
    std::string commit;
    std::filesystem::path cwd;
    std::map<std::string, std::string> env;  // the app's (no PORT: a worker serves none)
    int uid = -1, gid = -1;
  };

  Workers(const config::Config& cfg, process::Reaper& reaper, std::filesystem::path log_dir,
          std::string token_prefix, Events& events);
  ~Workers() = default;
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  /// Starts every configured worker for `launch`, then drains those running before (of
  /// the version it replaces, or of the same one restarted).
  void replace(const Launch& launch);
  /// Drains every worker (nothing is live, or the daemon stops).
  void stop_all(const char* why);
  /// After a daemon restart, with the live app adopted: each recorded worker still
  /// running the same command of the same commit is taken back (and out of
  /// `leftovers`); the others are started afresh.
  void adopt(const std::vector<WorkerRecord>& recorded, const Launch& launch,
             std::map<std::string, std::vector<pid_t>>& leftovers);
  /// From the monitor: notices exits (publishes WorkerExited) and starts again the
  /// workers whose backoff has passed (journalled worker-restart); rotates their logs.
  /// True when a worker was started again (state.json must learn its pid).
  bool tend();

  std::vector<WorkerRecord> records() const;
  std::vector<WorkerStatus> status() const;
  /// <data>/workers/NAME.log, or "" with `error` set for a name that is not configured.
  std::filesystem::path log_file(const std::string& name, std::string& error) const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Worker {
    std::string name, command;
    process::ProcessGroup group;  // leader -1 while waiting to start again
    std::string since;
    int restarts = 0;
    Backoff backoff;
    std::optional<Clock::time_point> restart_at;  // exited: started again then
    std::string last_exit;
  };
  /// Starts `w` for launch_ (mu_ held); on failure it waits for its next try.
  void start(Worker& w);
  void drain(std::vector<Worker> workers, const char* why);

  const config::Config& cfg_;
  process::Reaper& reaper_;
  const NamedLogs logs_;
  const std::string token_prefix_;
  Events& events_;

  mutable std::mutex mu_;  // guards what follows; held while spawning (fast), never while draining
  Launch launch_;
  std::vector<Worker> workers_;
};

}  // namespace sm::app
