#pragma once
// What an App answers: how an operation ended (OpResult) and what /status reports
// (Status), with maintenance as it was asked for.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "app/router.h"
#include "app/workers.h"

namespace sm::app {

/// How an operation ended; the API maps each to one HTTP status.
enum class OpStatus {
  Ok,
  Busy,           // another deploy/rollback holds the lock (409)
  Invalid,        // bad revision syntax or not a commit (400)
  UnknownCommit,  // no such revision (404)
  NoPrevious,     // rollback with nothing to roll back to (400)
  Failed,         // checkout/setup/start/health failed (500)
  ShuttingDown,   // the daemon is stopping (503)
  Conflict,       // not now, whatever is retried: promote with no canary (409)
};

/// The answer to a deploy or rollback.
struct OpResult {
  OpStatus status = OpStatus::Ok;
  std::string error;  // what failed, with the last lines of app/setup output
  std::string stage;  // checkout, setup, start or health, for Failed
  bool cancelled = false;  // Failed because `cancel` asked it to stop
  std::string slot;
  std::string commit;
  std::string previous_commit;
  /// A deploy of the commit already live and healthy: nothing was done (no `force`).
  bool unchanged = false;
  /// The rollback target this deploy destroyed without leaving another: it checked out
  /// into the previous slot and then failed, or it redeployed the live commit.
  std::string previous_replaced;
  /// A canary deploy (contract §14): the share of new visitors it got (0: not one).
  int canary_percent = 0;
  /// A rollback that ended a canary (nothing else changed: live serves everyone).
  bool canary_ended = false;
};

/// A canary (contract §14) as status reports it.
struct CanaryStatus {
  std::string commit, slot, since;
  int percent = 0;
  int pid = 0;
  Ports ports;  // the canary's own, to reach it directly
  uint64_t requests_new = 0, requests_old = 0;
};

/// Maintenance (contract §14) as asked for: the page ("" for the built-in one), the
/// Retry-After, and since when (set by App).
struct Maintenance {
  std::string page;
  int retry_after_s = 60;
  std::string since;
};
inline constexpr size_t kMaxMaintenancePage = 1 << 20;

/// What /status reports.
struct Status {
  std::string live_slot, live_commit, previous_slot, previous_commit;
  std::string last_deploy_time;  // RFC 3339, "" if never
  bool healthy = false;
  std::string mode;
  std::string operation;  // "deploy", "rollback" or "" when idle
  std::string stage;      // the running operation's stage
  std::string operation_commit;  // the commit the running operation deploys or goes back to
  std::vector<std::string> operation_stages;  // its stages so far, the running one last
  /// When there is no previous slot because the last deploy replaced it: that version.
  std::string previous_replaced;
  int live_pid = 0;
  Ports live_ports;
  std::string live_since;  // RFC 3339: when the live slot became live ("" if none)
  long long live_uptime_s = 0, daemon_uptime_s = 0;
  int crash_restarts = 0;  // live apps started again after a crash, since the daemon started
  std::string standby;        // "warm" or "frozen" while the previous app runs on as a standby
  std::string standby_until;  // RFC 3339, with a standby
  int previous_pid = 0;       // the standby's pid
  std::string last_auto_rollback_time, last_auto_rollback_reason;  // "" until one happened
  std::vector<WorkerStatus> workers;  // the live version's (contract §16)
  std::optional<Maintenance> maintenance;  // contract §14 (the page left out)
  std::optional<PauseState> paused;         // contract §14
  std::optional<CanaryStatus> canary;       // contract §14
};

}  // namespace sm::app
