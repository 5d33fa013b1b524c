#include "app/app.h"

#include <sys/stat.h>

#include <malloc.h>

#include <fmt/format.h>
#include <sys/wait.h>

#include <deque>
#include <fstream>

#include "config/env_file.h"
#include "app/app_internal.h"
#include "app/journal.h"
#include "app/slot_logs.h"
#include "app/state.h"
#include "git/quarantine.h"
#include "health/health.h"
#include "files/owner.h"
#include "log/log.h"
#include "process/drain.h"
#include "process/spawn.h"

namespace sm::app {
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

App::App(config::Config cfg, Paths paths, git::Repository repo, process::Reaper& reaper,
               Router& router)
    : cfg_(std::move(cfg)),
      paths_(std::move(paths)),
      repo_(std::move(repo)),
      reaper_(reaper),
      router_(router),
      token_prefix_(data_dir_id(paths_.data_dir) + "."),
      base_env_(process::current_environment()) {
  fs::create_directories(paths_.data_dir);
  if (cfg_.run_uid >= 0) {  // the app's user owns its data and nobody else may enter it
    struct stat st {};
    // The whole tree once, when the directory is not the user's yet (a new app, or a new
    // "user"); after that each checkout hands its slot over.
    if (stat(paths_.data_dir.c_str(), &st) == 0 &&
        (st.st_uid != static_cast<uid_t>(cfg_.run_uid) || st.st_gid != static_cast<gid_t>(cfg_.run_gid)))
      if (const auto err = files::chown_tree(paths_.data_dir, cfg_.run_uid, cfg_.run_gid); !err.empty())
        log::info("warning: {}", err);
    fs::permissions(paths_.data_dir, fs::perms::owner_all, fs::perm_options::replace);
    run_home_ = home_of_run_user();
  }
  journal_ = journal_to(events_, paths_.data_dir / "journal.ndjson");
  workers_ = std::make_unique<Workers>(cfg_, reaper_, paths_.data_dir / "workers", token_prefix_, events_);
  if (!cfg_.cron.empty())
    cron_ = std::make_unique<CronRunner>(cfg_, reaper_, paths_.data_dir / "cron", token_prefix_, events_,
                                         [this] { return live_launch(); }, paths_.log_name);
  monitor_ = std::thread([this] { monitor(); });
  if (cfg_.restart_on_failure) crash_restart_ = std::make_unique<CrashRestart>(*this);
  if (cfg_.auto_rollback_s > 0) auto_rollback_ = std::make_unique<AutoRollback>(*this, cfg_.auto_rollback_s);
  canary_guard_ = std::make_unique<CanaryGuard>(*this);
}

App::~App() {
  begin_shutdown();
  shutdown();
}

fs::path App::slot_dir(const Slot& s) const {
  return paths_.data_dir / fmt::format("slot-{}", s.name);
}

fs::path App::log_path(const Slot& s) const {
  return paths_.data_dir / fmt::format("slot-{}.log", s.name);
}

void App::set_stage(const std::string& op, const std::string& stage) {
  {
    std::lock_guard lock(mu_);
    if (op != operation_) {  // a new operation, or none
      operation_commit_.clear();
      operation_stages_.clear();
    }
    operation_ = op;
    stage_ = stage;
    if (!stage.empty()) operation_stages_.push_back(stage);
  }
  emit(EventKind::Stage, {{"operation", op}, {"stage", stage}});
}

void App::emit(EventKind kind, nlohmann::json fields) {
  events_.publish({kind, op_id_, std::move(fields)});
}


void App::begin_cancellable() {
  std::lock_guard lock(mu_);
  cancelled_ = false;
  cancellable_ = true;
}

bool App::past_cancel_point() {
  std::lock_guard lock(mu_);
  if (cancelled_) return false;
  cancellable_ = false;
  return true;
}

std::string App::stage_now() const {
  std::lock_guard lock(mu_);
  return stage_;
}

std::optional<App::Cancelled> App::cancel() {
  std::lock_guard lock(mu_);
  if (operation_.empty() || !cancellable_) return std::nullopt;
  cancelled_ = true;
  log::info("cancel: stopping the {} at stage {}", operation_, stage_);
  return Cancelled{operation_, stage_};
}

OpResult App::failed(OpResult r, const std::string& what, const std::string& stage,
                        const std::string& error) {
  r.status = OpStatus::Failed;
  r.cancelled = cancelled_;
  r.stage = stage;
  r.error = fmt::format("{} failed at {}: {}", what, stage, error);
  log::info("{}", r.error);
  if (!r.previous_replaced.empty()) {
    std::lock_guard lock(mu_);
    previous_replaced_ = r.previous_replaced;
    log::info("there is nothing to roll back to: this deploy used the slot of {}", r.previous_replaced.substr(0, 12));
  }
  set_stage("", "");
  return r;
}

void App::promote(Slot& target, Slot* previous) {
  {
    std::lock_guard lock(mu_);
    previous_ = previous && !previous->commit.empty() ? previous : nullptr;
    if (previous_) previous_replaced_.clear();
    live_ = &target;
    healthy_ = true;
    ++live_generation_;
    last_deploy_time_ = log::now_rfc3339();
    live_since_ = last_deploy_time_;
    operation_.clear();
    stage_.clear();
    cancellable_ = false;
  }
  // Its workers start now that it serves; the previous version's are drained after.
  workers_->replace(worker_launch(target, target.commit));
}

OpResult App::deploy(const std::string& revision, Progress progress, const Wait& wait,
                        const fs::path& quarantine, bool force, int canary_percent) {
  try {
    git::check_revision_syntax(revision);
  } catch (const git::GitError& e) {
    return refused(OpStatus::Invalid, e.what());
  }
  if (canary_percent && (canary_percent < 1 || canary_percent > 99))
    return refused(OpStatus::Invalid, fmt::format("a canary's share must be 1-99 %, got {}", canary_percent));
  if (canary_percent && router_.must_drain_before_start())
    return refused(OpStatus::Invalid, "a canary needs proxy mode: in direct mode (--no-proxy) one app holds the port");
  if (!quarantine.empty()) {
    // Only a directory inside this repository's object store: the API must not become
    // a way to read objects from anywhere.
    std::error_code ec;
    const fs::path objects = fs::canonical(repo_.objects_dir(), ec);
    const fs::path q = fs::canonical(quarantine, ec);
    const auto rel = q.lexically_relative(objects);
    if (ec || !quarantine.is_absolute() || !fs::is_directory(q) || rel.empty() || *rel.begin() == ".." ||
        rel == ".")
      return refused(OpStatus::Invalid,
                     fmt::format("\"quarantine\" must be a directory inside {} (a push's quarantine), got {}",
                                 objects.string(), quarantine.string()));
  }
  // With --wait, a deploy queues behind a canary until it is promoted or ended.
  Wait rest = wait;
  if (std::unique_lock lock(mu_); wait.up_to.count() > 0 && canary_) {
    const auto deadline = Clock::now() + wait.up_to;
    while (canary_ && !stopping_ && Clock::now() < deadline && !(wait.gave_up && wait.gave_up()))
      canary_ended_.wait_for(lock, milliseconds(100));
    rest.up_to = std::chrono::duration_cast<std::chrono::seconds>(std::max(deadline - Clock::now(), Clock::duration{}));
  }
  return on_op_thread(canary_percent ? "canary" : "deploy", std::move(progress), [&] {
    if (auto busy = refuse_during_canary()) return *busy;
    if (!quarantine.empty()) {
      // Ours before anything points at them: git deletes the quarantine if it rejects
      // the push, which would leave the slot's HEAD naming a vanished commit.
      try {
        git::adopt_quarantine(quarantine, repo_.objects_dir());
      } catch (const git::GitError& e) {
        return refused(OpStatus::Invalid, e.what());
      }
    }
    repo_.set_extra_objects(quarantine.empty() ? std::vector<fs::path>{} : std::vector<fs::path>{quarantine});
    struct Clear {
      git::Repository& r;
      ~Clear() { r.set_extra_objects({}); }
    } clear{repo_};
    return run_deploy(revision, force, canary_percent);
  }, rest);
}

OpResult App::rollback(Progress progress, const Wait& wait) {
  bool canary;
  {
    std::lock_guard lock(mu_);
    canary = canary_.has_value();
  }
  if (canary)
    return on_op_thread("canary-abort", std::move(progress), [&] { return run_end_canary(""); }, wait,
                        "rollback requested");
  return on_op_thread("rollback", std::move(progress), [&] { return run_rollback(); }, wait);
}

OpResult App::restart(Progress progress, const Wait& wait) {
  return on_op_thread("restart", std::move(progress), [&] { return run_restart(); }, wait,
                      "requested");
}

OpResult App::on_op_thread(const char* action, Progress progress,
                              const std::function<OpResult()>& run, const Wait& wait,
                              const char* reason) {
  std::optional<OpResult> r;
  const auto turn = ops_.run([&] {
    const log::Scope scope(paths_.log_name);
    const auto began = Clock::now();
    OpResult out = run_locked(std::move(progress), run);
    record(action, out, began, reason);
    // The operation freed what libgit2 and the checkout allocated (megabytes for a
    // large repository); glibc keeps freed pages mapped unless asked.
    malloc_trim(0);
    return out;
  }, r, Clock::now() + wait.up_to, wait.gave_up);
  if (turn == OpThread::Turn::Closed)
    return refused(OpStatus::ShuttingDown, "the daemon is shutting down");
  if (turn == OpThread::Turn::Busy)
    return refused(OpStatus::Busy, wait.up_to.count() ? fmt::format("{} (waited {} s)", kBusy, wait.up_to.count())
                                                      : std::string(kBusy));
  return *r;
}

namespace {
/// The progress stream's view of operation `op`'s events: its stages, setup output and
/// health attempts as {"event":<kind>, ..., "at_ms":<since it began>}.
Events::Listener progress_of(uint64_t op, App::Progress progress) {
  return [op, began = Clock::now(), progress = std::move(progress)](const Event& e) {
    if (e.op != op) return;
    if (e.kind != EventKind::Stage && e.kind != EventKind::Output && e.kind != EventKind::Health)
      return;
    if (e.kind == EventKind::Stage && e.fields.value("stage", "").empty()) return;
    nlohmann::json line{{"event", name_of(e.kind)}};
    line.update(e.fields);
    line["at_ms"] = std::chrono::duration_cast<milliseconds>(e.at - began).count();
    progress(line);
  };
}

}  // namespace

OpResult App::run_locked(Progress progress, const std::function<OpResult()>& run) {
  std::unique_lock op(op_mu_, std::try_to_lock);  // restore() or shutdown() may hold it
  if (!op.owns_lock()) return refused(OpStatus::Busy, kBusy);
  if (stopping_) return refused(OpStatus::ShuttingDown, "the daemon is shutting down");
  ++op_id_;
  Events::Subscription listening;
  if (progress) listening = events_.subscribe(progress_of(op_id_, std::move(progress)));
  begin_cancellable();
  return run();
}

void App::record(const char* action, const OpResult& r, Clock::time_point began,
                    const char* reason) {
  if (r.status != OpStatus::Ok && r.status != OpStatus::Failed) return;  // refused: nothing ran
  nlohmann::json e{{"time", log::now_rfc3339()},
                   {"action", action},
                   {"commit", r.commit},
                   {"slot", r.slot},
                   {"previous_commit", r.previous_commit},
                   {"duration_ms", std::chrono::duration_cast<milliseconds>(Clock::now() - began).count()},
                   {"result", r.status == OpStatus::Ok ? "ok" : r.cancelled ? "cancelled" : "failed"}};
  if (reason) e["reason"] = reason;
  if (r.unchanged) e["unchanged"] = true;
  if (!r.previous_replaced.empty()) e["previous_replaced"] = r.previous_replaced;
  if (r.status == OpStatus::Failed) {
    e["stage"] = r.stage;
    e["error"] = r.error;
  }
  emit(EventKind::Finished, std::move(e));
}

void App::begin_shutdown() {
  stopping_ = true;
  ops_.close();  // callers waiting for their turn get 503
  canary_ended_.notify_all();
  if (canary_guard_) canary_guard_->stop();
  reaper_.wake();
  if (crash_restart_) crash_restart_->stop();
}

void App::shutdown() {
  std::lock_guard op(op_mu_);  // the running operation gives up quickly once stopping_
  stop_monitor();
  if (cron_) cron_->stop(handed_over_ ? "the daemon handed over to a new one" : "the daemon is stopping");
  if (handed_over_) return;
  workers_->stop_all("daemon shutting down");
  for (Slot& s : slots_) stop_app(s, "daemon shutting down");
}

}  // namespace sm::app
