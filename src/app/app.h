#pragma once
// One app: its slots a/b, the deploy and rollback state machine, its operation lock
// and queue, and what its /status reports. Knows nothing about HTTP, nor of other apps.

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "app/auto_rollback.h"
#include "app/canary_watch.h"
#include "app/cron_runner.h"
#include "app/crash_restart.h"
#include "app/events.h"
#include "app/op_thread.h"
#include "app/router.h"
#include "app/state.h"
#include "app/answers.h"
#include "app/workers.h"
#include "git/git.h"
#include "process/process_group.h"
#include "process/reaper.h"

namespace sm::app {

/// `argv` as one /bin/sh command, each word single-quoted.
std::string shell_command(const std::vector<std::string>& argv);

/// How long a caller waits for a running operation before it is refused as busy (0: not
/// at all), and how the daemon can tell it has gone away meanwhile (then it gives up its
/// place in the queue).
struct OpWait {
  std::chrono::seconds up_to{0};
  std::function<bool()> gave_up;
};

/// Where the daemon keeps things.
struct Paths {
  std::filesystem::path data_dir;  // <data>; slots at <data>/slot-a, logs at <data>/slot-a.log
  std::string log_name;            // one of a server's apps: its name, in its log lines; "" for the only one
};

/// The daemon's state machine. deploy() and rollback() run on the operation thread
/// (the caller waits) and hold the operation lock; status() never waits for them.
class App {
 public:
  App(config::Config cfg, Paths paths, git::Repository repo, process::Reaper& reaper,
         Router& router);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  /// Brings back what <data>/state.json says: adopts the live app when its process
  /// group is still running and healthy, else kills what is left of it and starts it
  /// again; restores previous; kills any other process an earlier daemon on this data
  /// dir started (a deploy it was killed in the middle of). Call once, before serving.
  void restore();

  /// Receives an operation's progress events as they happen (on the operation's thread).
  using Progress = std::function<void(const nlohmann::json&)>;

  /// Everything the daemon tells: stages, output, health probes, finished operations,
  /// the live app's exits and health flips. Subscribe before restore() to see it all.
  Events& events() { return events_; }

  using Wait = OpWait;

  /// `progress`, when set, follows this operation's events (a listener of events()
  /// for as long as it runs): one per stage ({"event":"stage","stage":...}),
  /// each line of setup output ({"event":"output","line":...}) and health attempts
  /// ({"event":"health","attempt":N,"detail":...}, at most every 500 ms); each has
  /// "at_ms" since the operation began.
  /// `quarantine`, when given, is a directory of objects under the repository's own
  /// (a push's quarantine during its pre-receive hook) read for this deploy only; Invalid
  /// when it is anything else. A full hash the repository lacks is fetched first from
  /// the remote "webhooks.remote" names (default "origin") when the repository has it.
  /// Deploying the commit that is live and healthy does nothing (OpResult::unchanged)
  /// unless `force`.
  /// `canary_percent` (1-99, proxy mode; contract §14): the new version then serves that
  /// share of new visitors beside live until promote_canary() or rollback() (canary.cpp).
  OpResult deploy(const std::string& revision, Progress progress = {}, const Wait& wait = {},
                  const std::filesystem::path& quarantine = {}, bool force = false, int canary_percent = 0);
  /// During a canary it ends the canary instead (journalled canary-abort).
  OpResult rollback(Progress progress = {}, const Wait& wait = {});
  /// Makes the canary live, as a deploy's switch would (Conflict when none runs).
  OpResult promote_canary(Progress progress = {}, const Wait& wait = {});
  /// Ends the canary of `commit`, everyone to live, journalled canary-abort with `reason`;
  /// Invalid (nothing done) when no canary of it runs.
  OpResult abort_canary(const std::string& commit, const std::string& reason);
  /// Starts a fresh process of the live slot's commit (no checkout, no setup; env_file
  /// re-read), health-checks it and switches to it: in proxy mode while the old one
  /// serves, in direct mode after draining it (started again when the new one fails).
  /// Invalid ("nothing is live") when nothing is.
  OpResult restart(Progress progress = {}, const Wait& wait = {});
  /// Crash restart (config "restart": "on-failure"): starts the live slot again, as
  /// restart() does, journalled as restart with reason "crashed"; queued behind a running
  /// operation. Invalid (nothing done, not journalled) unless `slot` still holds `commit`
  /// as the live version and its app is down.
  OpResult restart_crashed(const std::string& slot, const std::string& commit);
  /// Auto-rollback (config "auto_rollback_s"): rolls back to the previous version (the
  /// standby when there is one), journalled as auto-rollback with `reason`; queued behind
  /// a running operation. Invalid (nothing done) unless `slot` still holds `commit` as the
  /// live version. The app it rolls back from is stopped, never kept as a standby.
  OpResult auto_rollback(const std::string& slot, const std::string& commit, const std::string& reason);
  Status status() const;
  /// The log file of slot `which` ("live", "previous", "a" or "b"), or "" with `error`
  /// set (unknown name, or no live/previous slot).
  std::filesystem::path log_file(const std::string& which, std::string& error) const;
  /// The log of worker `name`, or "" with `error` set (no such worker).
  std::filesystem::path worker_log_file(const std::string& name, std::string& error) const {
    return workers_->log_file(name, error);
  }
  /// The log of cron job `name`, or "" with `error` set (no such job).
  std::filesystem::path cron_log_file(const std::string& name, std::string& error) const;

  /// Maintenance on (`m`) or off (nullopt), applied at once and kept across restarts
  /// (maintenance.cpp). "" or why not, with `status` (400: a page over 1 MiB, a
  /// Retry-After outside 1-86400, or direct mode).
  std::string set_maintenance(std::optional<Maintenance> m, int& status);
  /// Pause (contract §14): the app's new requests wait (in the proxy) until resume() or
  /// `timeout_s` (1-600). "" or why not, with `status` (400: out of range or direct mode;
  /// 409: paused already / not paused). Not kept: a restart or an upgrade resumes.
  std::string pause(int timeout_s, int& status);
  std::string resume(int& status);

  // One-off commands (contract §16, `run`; one_off.cpp).
  /// Where a command runs in slot `which` ("live" or "previous"): its directory, the
  /// app's environment, its user; nothing with `error` and `status` (404: no such slot;
  /// 409: the previous slot while an operation runs).
  std::optional<Workers::Launch> run_place(const std::string& which, std::string& error, int& status) const;
  /// Runs `argv` at `where` with no terminal (stdin /dev/null), each line of its output
  /// (stdout and stderr together) to `line`; when `line` returns false (the caller went
  /// away) the command is stopped. Journalled `run`. Returns its exit code (128+N for
  /// signal N; 127 when it cannot start).
  int run_here(const std::vector<std::string>& argv, const Workers::Launch& where,
               const std::function<bool(const std::string&)>& line);
  /// A command the local CLI runs itself on its terminal: remembered until ran() says
  /// how it ended (then journalled). Returns its id.
  uint64_t remember_run(const std::vector<std::string>& argv, const Workers::Launch& where);
  /// False when no such run is remembered.
  bool ran(uint64_t id, int exit_code);
  /// The newest `limit` journal entries after the newest `skip`, newest first.
  std::vector<nlohmann::json> history(size_t limit, size_t skip = 0) const;

  /// What cancel() stopped: "deploy" or "rollback", and the stage it was in.
  struct Cancelled {
    std::string operation, stage;
  };
  /// Asks the running deploy or rollback to stop at its current stage (it then fails as
  /// a failed deploy would, with `cancelled` set); nullopt when none runs, or when it has
  /// passed the point where it can be undone (its old app is being drained).
  std::optional<Cancelled> cancel();

  /// For an upgrade: the operation lock, so that no deploy, rollback or restart starts
  /// while a newer daemon takes over; an unlocked lock when one runs (or queued callers
  /// wait) or the daemon is stopping.
  std::unique_lock<std::mutex> hold_operations();
  /// The apps now belong to a newer daemon: stop watching them and never stop them
  /// (shutdown() leaves them running); operations are refused from now on, as when
  /// stopping. Call while holding hold_operations()'s lock.
  void hand_over();
  /// For an upgrade, before the newer daemon starts (which would kill the canary as a
  /// stranger): a canary survives nothing, so everyone goes to live, its requests finish,
  /// it stops, journalled canary-abort. Call while holding hold_operations()'s lock.
  void end_canary_for_upgrade();
  /// One line for systemd's STATUS=: what is live and whether it is healthy.
  std::string status_line() const;

  /// Makes running and future operations give up quickly (setup killed, health waits
  /// abandoned). Safe to call from any thread.
  void begin_shutdown();
  /// Waits for the running operation, then drains every slot. Call after begin_shutdown.
  void shutdown();

 private:
  /// A running app process of a slot.
  struct Running {
    process::ProcessGroup group;
    Ports ports;
    std::uintmax_t log_from = 0;  // the log's size when it started: its output follows
    bool exit_reported = false;   // the monitor has seen it exit
    // A previous slot's app kept running after it was replaced: "warm" or "frozen"
    // (SIGSTOPped), until standby_until; "" for a live app.
    std::string standby;
    std::chrono::system_clock::time_point standby_until;
  };
  struct Slot {
    char name;
    std::string commit;  // checked out and intact; "" when nothing valid is there
    std::unique_ptr<Running> app;
  };

  // The operations themselves, run by run_locked().
  OpResult run_deploy(const std::string& revision, bool force, int canary_percent = 0);
  /// The commit `revision` names; a full hash not here yet is fetched first. Throws GitError.
  std::string resolve_or_fetch(const std::string& revision);
  OpResult run_rollback(bool automatic = false);
  /// `workers`: the live version's workers start again too (not for a crash restart of
  /// the web process).
  OpResult run_restart(bool workers = true);
  /// Takes the operation lock (Busy when restore() or shutdown() holds it), numbers the
  /// operation, subscribes `progress` to its events and makes it cancellable, then runs it.
  OpResult run_locked(Progress progress, const std::function<OpResult()>& run);
  /// Publishes an event of the running operation (never while holding mu_).
  void emit(EventKind kind, nlohmann::json fields);
  /// Writes state.json and the live/prev links from memory (a failure is logged).
  void persist();
  /// Runs `run` on the operation thread (Busy at once when an operation runs), then
  /// journals it as `action` and hands the memory it freed back to the system.
  OpResult on_op_thread(const char* action, Progress progress,
                        const std::function<OpResult()>& run, const Wait& wait,
                        const char* reason = nullptr);
  /// Publishes the operation's end (the journal listener appends it); `r` is its answer.
  /// `reason`, when given, is journalled too ("requested", "daemon-start").
  void record(const char* action, const OpResult& r, std::chrono::steady_clock::time_point began,
              const char* reason = nullptr);
  using Leftovers = std::map<std::string, std::vector<pid_t>>;  // by SLOT_MACHINE_RUN token
  /// Makes `live`'s recorded running group its app when it is alive and healthy and
  /// traffic can be routed to it; takes it out of `leftovers`. False: not adopted.
  bool adopt(Slot& live, const SlotRecord& rec, Leftovers& leftovers);
  /// restore(): maintenance as <data>/maintenance.json left it.
  void restore_maintenance();
  /// Starts the live slot again after a daemon restart; "" or why it failed.
  std::string restart_live(Slot& live);
  /// Exit status of an app's leader, if it has exited (-1 when adopted: not our child).
  std::optional<int> exit_of(const Running& app) const;
  Slot& slot_named(char name) { return slots_[name == 'a' ? 0 : 1]; }

  // Steps of the deploy story, in the order they happen.
  void set_stage(const std::string& op, const std::string& stage);
  std::map<std::string, std::string> app_env(const Slot& slot, const std::string& commit,
                                             const Ports& ports) const;
  std::string run_setup(Slot& slot, const std::string& commit, const Ports& ports);
  /// With "user": makes `dir` (a slot just checked out) and the shared directories the
  /// app user's. "" or what failed.
  std::string give_to_app_user(const std::filesystem::path& dir) const;
  /// With "user": the user's home when it is its own, else <data>/home made its own.
  std::filesystem::path home_of_run_user() const;
  std::string start_app(Slot& slot, const std::string& commit, const Ports& ports);
  /// How `slot`'s workers start: its directory, the app's environment without a port.
  Workers::Launch worker_launch(const Slot& slot, const std::string& commit) const;
  /// The live version's launch, for a cron run; nothing when no version is live.
  std::optional<Workers::Launch> live_launch() const;
  void stop_app(Slot& slot, const char* why);
  /// Direct mode: stop the live app so the new one can bind. True when it did.
  bool drain_first_if_needed(Slot* live, const char* op);
  /// After a failed start: kill `target`; if the live app was drained for it, start the
  /// live app again. Returns a sentence for the error saying what happened to live.
  std::string undo_failed_start(Slot& target, Slot* live, bool live_was_drained);
  /// Route new requests to `ports`, then drain the old live app unless already drained;
  /// with `to_standby` (and a standby configured) it is kept running unrouted instead of
  /// stopped once its requests are done. Returns "" or why traffic could not be routed
  /// (the old app is then untouched).
  std::string switch_and_retire(const Ports& ports, Slot* old_live, bool already_drained, const char* op,
                                bool to_standby = false);

  // Canary (canary.cpp).
  /// Routes `percent`% of new visitors to `target` (started and healthy on `ports`) and
  /// makes it the canary; "" or why not.
  std::string begin_canary(Slot& target, const std::string& commit, const Ports& ports, int percent);
  OpResult run_promote();
  /// Ends the canary (of `commit`, when given): everyone to live, its process drained
  /// (`handing_over`: for an upgrade, whose daemon is stopping, the drain still waits).
  OpResult run_end_canary(const std::string& commit, bool handing_over = false);
  /// Busy (with what to do) while a canary runs; nullopt otherwise.
  std::optional<OpResult> refuse_during_canary() const;

  // Standby (standby.cpp).
  /// Keeps `slot`'s replaced app as the standby (SIGSTOPped when frozen).
  void park(Slot& slot);
  /// Rollback to the standby in `target`: resume it, one health probe, switch, retire
  /// the old live. "" when done; otherwise why, and the caller starts `target` afresh.
  std::string rollback_to_standby(Slot& target, Slot* old_live, bool automatic);
  /// Monitor: stops a standby whose time is up (unless an operation runs), forgets one
  /// that exited.
  void tend_standby();
  /// restore(): takes the previous slot's recorded standby back when it still runs.
  void adopt_standby(Slot& previous, const SlotRecord& rec, Leftovers& leftovers);
  /// `r` as a failure: "<what> failed at <stage>: <error>", logged; the stage cleared.
  OpResult failed(OpResult r, const std::string& what, const std::string& stage,
                  const std::string& error);
  /// Make `target` live and `previous` (if it holds a commit) the previous slot; the
  /// workers become `target`'s (started, then the ones before drained).
  void promote(Slot& target, Slot* previous);
  std::string log_tail(const Slot& slot, std::uintmax_t from) const;
  void append_log(const Slot& slot, const std::string& line) const;
  std::filesystem::path slot_dir(const Slot& s) const;
  std::filesystem::path log_path(const Slot& s) const;
  bool pause_until(std::chrono::steady_clock::time_point t) const;
  void monitor();
  /// Monitor: the canary's exit, or (`probe_now`) a health probe of it, as an event.
  std::optional<Event> canary_check(bool probe_now);
  /// Ends the monitor thread (idempotent).
  void stop_monitor();

  const config::Config cfg_;
  const Paths paths_;
  git::Repository repo_;
  process::Reaper& reaper_;
  Router& router_;

  Events events_;  // before everything that publishes or subscribes
  Events::Subscription journal_;  // appends finished operations to journal.ndjson

  std::mutex op_mu_;  // held for a whole deploy/rollback
  // The running operation's number; only the thread holding op_mu_ changes it.
  std::atomic<uint64_t> op_id_{0};

  std::mutex persist_mu_;  // one persist() at a time: the operation's and the monitor's (a worker restarted)
  mutable std::mutex mu_;  // guards everything below; never held across slow work
  Slot slots_[2] = {{'a', "", nullptr}, {'b', "", nullptr}};
  Slot* live_ = nullptr;
  Slot* previous_ = nullptr;
  bool healthy_ = false;
  uint64_t live_generation_ = 0;  // bumps whenever the live app changes
  std::string last_deploy_time_;
  std::string live_since_;
  const std::chrono::steady_clock::time_point born_ = std::chrono::steady_clock::now();
  const std::string token_prefix_;  // every process this data dir's daemons start
  std::string operation_, stage_;
  std::string operation_commit_;   // see Status::operation_commit
  std::vector<std::string> operation_stages_;  // see Status::operation_stages
  std::string previous_replaced_;  // see Status::previous_replaced

  const std::map<std::string, std::string> base_env_;  // the daemon's environment
  std::filesystem::path run_home_;  // with "user": HOME for its commands (set in the constructor)

  std::atomic<bool> stopping_{false};
  std::atomic<bool> handed_over_{false};  // the apps belong to a newer daemon
  std::atomic<bool> cancelled_{false};  // the running operation was asked to stop
  std::atomic<bool> restoring_{false};  // undoing a failed or cancelled start: not cancellable
  bool cancellable_ = false;            // guarded by mu_: an operation runs and can be undone
  /// Whether the running operation must stop: cancelled, or the daemon is stopping.
  bool interrupted() const { return stopping_ || (cancelled_ && !restoring_); }
  /// Called where an operation commits (its old app is about to be drained): false when
  /// it was cancelled before; from then on cancel() finds nothing to cancel.
  bool past_cancel_point();
  /// At the start of an operation: it can be cancelled, and has not been.
  void begin_cancellable();
  /// The running operation's stage.
  std::string stage_now() const;
  std::atomic<int> crash_restarts_{0};
  std::string last_auto_rollback_time_, last_auto_rollback_reason_;  // guarded by mu_
  std::unique_ptr<CrashRestart> crash_restart_;  // with "restart": "on-failure"
  std::unique_ptr<AutoRollback> auto_rollback_;  // with "auto_rollback_s"
  std::unique_ptr<Workers> workers_;  // the live version's workers; before monitor_, which tends them
  std::unique_ptr<CronRunner> cron_;  // with "cron"
  struct PendingRun {
    std::vector<std::string> argv;
    Workers::Launch where;
    std::chrono::steady_clock::time_point began;
  };
  struct CanaryRun {
    Slot* slot;
    std::string commit, since;
    int percent;
  };
  std::optional<CanaryRun> canary_;        // guarded by mu_
  std::condition_variable canary_ended_;   // with mu_: a deploy --wait waits on it
  std::unique_ptr<CanaryGuard> canary_guard_;
  std::mutex maintenance_mu_;  // one set_maintenance() at a time (router, file, then memory)
  std::optional<Maintenance> maintenance_;  // guarded by mu_
  std::mutex runs_mu_;  // guards the two below
  std::map<uint64_t, PendingRun> runs_;  // commands local CLIs run, until they report the exit
  uint64_t last_run_id_ = 0;
  void journal_run(const std::vector<std::string>& argv, const Workers::Launch& where, int exit_code,
                   long long duration_ms, const char* how);
  std::atomic<bool> monitor_stop_{false};
  std::thread monitor_;
  OpThread ops_;  // last: joined first, while everything an operation uses still exists
};

}  // namespace sm::app
