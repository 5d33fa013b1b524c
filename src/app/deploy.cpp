// The deploy and rollback stories, top to bottom: each step is an App member in
// app_steps.cpp; run by App::run_locked on the operation thread.

#include <fmt/format.h>

#include "app/app.h"
#include "app/app_internal.h"
#include "app/shared_dirs.h"
#include "git/jobs.h"
#include "log/log.h"
#include "process/worker.h"

namespace sm::app {
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

OpResult App::run_deploy(const std::string& revision, bool force, int canary_percent) {
  if (canary_percent) {
    std::lock_guard lock(mu_);
    if (!live_ || !live_->app)
      return refused(OpStatus::Conflict,
                     "a canary needs a live version to share the traffic with: deploy without --canary first");
  }
  set_stage("deploy", "resolve");
  std::string commit;
  try {
    commit = resolve_or_fetch(revision);
  } catch (const git::GitError& e) {
    if (cancelled_) {  // stopped while fetching: a cancelled deploy, as at any other stage
      OpResult r;
      r.commit = revision;
      r.previous_commit = status().live_commit;
      return failed(r, fmt::format("deploy of {}", revision.substr(0, 12)), "fetch", kCancelledError);
    }
    set_stage("", "");
    return refused(e.kind() == git::ErrorKind::UnknownRevision ? OpStatus::UnknownCommit
                                                               : OpStatus::Invalid,
                   e.what());
  }

  Slot* old_live;
  Slot* target;
  std::string replaced;  // the rollback target whose slot this deploy takes
  OpResult same;         // the answer when `commit` is live and healthy already
  {
    std::lock_guard lock(mu_);
    old_live = live_;
    same.unchanged = !force && live_ && live_->commit == commit && healthy_ && live_->app && !exit_of(*live_->app);
    if (same.unchanged) same.slot = std::string(1, live_->name);
    operation_commit_ = commit;
    target = live_ == &slots_[0] ? &slots_[1] : &slots_[0];
    // The target's files are about to change: it is no longer a previous to offer.
    if (!same.unchanged && previous_ == target) {
      replaced = target->commit;
      previous_ = nullptr;
    }
    if (!same.unchanged) target->commit.clear();
  }
  if (same.unchanged) {
    set_stage("", "");
    same.commit = same.previous_commit = commit;
    log::info("deploy of {}: already live and healthy in slot {}; nothing done (force redeploys)", commit,
              same.slot);
    return same;
  }
  persist();  // a crash from here on must not offer the target as previous
  stop_app(*target, "its slot is being redeployed");
  log::info("deploy {}{} to slot {}", commit, revision == commit ? "" : fmt::format(" ({})", revision),
            target->name);
  emit(EventKind::Started, {{"operation", "deploy"},
                            {"commit", commit},
                            {"slot", std::string(1, target->name)},
                            {"previous_commit", old_live ? old_live->commit : ""}});
  const auto started = Clock::now();

  OpResult r;
  r.slot = std::string(1, target->name);
  r.commit = commit;
  r.previous_commit = old_live ? old_live->commit : "";
  // Until it succeeds with another version live before it, the rollback target is gone.
  r.previous_replaced = replaced;
  if (!replaced.empty())
    log::info("slot {} held the rollback target {}: if this deploy fails, there is nothing to roll back to",
              target->name, replaced.substr(0, 12));
  auto fail = [&](const std::string& stage, const std::string& error) {
    return failed(r, fmt::format("deploy of {}", commit.substr(0, 12)), stage, error);
  };

  set_stage("deploy", "checkout");
  unlink_shared(slot_dir(*target), cfg_.shared_dirs);  // the checkout must not write through them
  // In a worker process, so that a cancel stops it at once even while libgit2 writes
  // (it has no way to stop then); the libgit2 memory stays in the worker, too.
  process::WorkerResult checkout;
  try {
    checkout = process::run_worker(
        reaper_,
        git::checkout_args(repo_, slot_dir(*target),
                           fmt::format("slot-{}-{}", target->name, data_dir_id(paths_.data_dir)), commit),
        [this] { return interrupted(); });
  } catch (const std::exception& e) {
    return fail("checkout", e.what());
  }
  if (checkout.stopped || cancelled_)
    return fail("checkout", cancelled_ ? kCancelledError : "abandoned: the daemon is shutting down");
  if (!checkout.error.empty()) return fail("checkout", checkout.error);
  if (auto err = link_shared(slot_dir(*target), paths_.data_dir / "shared", cfg_.shared_dirs); !err.empty())
    return fail("checkout", err);
  if (auto err = give_to_app_user(slot_dir(*target)); !err.empty()) return fail("checkout", err);

  const Ports ports = router_.ports_for_new_process();
  if (!cfg_.setup_command.empty()) {
    set_stage("deploy", "setup");
    if (auto err = run_setup(*target, commit, ports); !err.empty()) return fail("setup", err);
  }

  const bool drained_first = drain_first_if_needed(old_live, "deploy");
  if (cancelled_) return fail("drain", kCancelledError + undo_failed_start(*target, old_live, drained_first));

  set_stage("deploy", "start");
  if (auto err = start_app(*target, commit, ports); !err.empty()) {
    const std::string stage = target->app ? "health" : "start";
    return fail(stage, err + undo_failed_start(*target, old_live, drained_first));
  }

  if (canary_percent) {  // it serves beside live, until promote or rollback (canary.cpp)
    if (!past_cancel_point()) return fail("canary", kCancelledError + undo_failed_start(*target, old_live, false));
    if (auto err = begin_canary(*target, commit, ports, canary_percent); !err.empty())
      return fail("canary", err + undo_failed_start(*target, old_live, false));
    r.canary_percent = canary_percent;
    if (!r.previous_replaced.empty()) {  // the rollback target's slot holds the canary now
      std::lock_guard lock(mu_);
      previous_replaced_ = r.previous_replaced;
    }
    persist();
    log::info("canary of {} in slot {}: {}% of new visitors, after {} ms", commit, target->name, canary_percent,
              std::chrono::duration_cast<milliseconds>(Clock::now() - started).count());
    return r;
  }
  if (auto err = switch_and_retire(ports, old_live, drained_first, "deploy", true); !err.empty())
    return fail(cancelled_ ? stage_now() : "switch",
                err + undo_failed_start(*target, old_live, drained_first));
  {
    std::lock_guard lock(mu_);
    target->commit = commit;
  }
  promote(*target, old_live);
  {
    std::lock_guard lock(mu_);
    // A new rollback target, unless the version before was this same commit (or none).
    if (previous_ && previous_->commit != commit) r.previous_replaced.clear();
    previous_replaced_ = r.previous_replaced;
  }
  persist();
  log::info("deployed {} to slot {} in {} ms", commit, target->name,
            std::chrono::duration_cast<milliseconds>(Clock::now() - started).count());
  return r;
}

std::string App::resolve_or_fetch(const std::string& revision) {
  try {
    return repo_.resolve(revision);
  } catch (const git::GitError& e) {
    const bool full_hash = revision.size() == 40 && revision.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (e.kind() != git::ErrorKind::UnknownRevision || !full_hash) throw;
    // A commit pushed elsewhere (deploy --remote from a laptop): fetch, then look again.
    const std::string remote = cfg_.webhooks ? cfg_.webhooks->remote : "origin";
    const std::filesystem::path token_file = cfg_.webhooks ? cfg_.webhooks->token_file : std::filesystem::path();
    set_stage("deploy", "fetch");
    log::info("commit {} is not here; fetching remote \"{}\"", revision, remote);
    // In a worker process, like the checkout: a cancel stops it at once, and the memory
    // libgit2 leaks in its config regex matching (Debian's libgit2 1.5) stays there.
    process::WorkerResult fetched;
    try {
      fetched = process::run_worker(reaper_, git::fetch_args(repo_, remote, token_file),
                                    [this] { return interrupted(); });
    } catch (const std::exception& f) {
      fetched.error = f.what();
    }
    if (fetched.stopped || cancelled_)
      throw git::GitError(git::ErrorKind::Other, cancelled_ ? kCancelledError : "abandoned: the daemon is shutting down");
    if (!fetched.error.empty())
      throw git::GitError(git::ErrorKind::UnknownRevision,
                          fmt::format("{}; fetching it failed: {}", e.what(), fetched.error));
    try {
      return repo_.resolve(revision);
    } catch (const git::GitError& again) {
      throw git::GitError(again.kind(), fmt::format("{} (not in remote \"{}\" either)", again.what(), remote));
    }
  }
}

OpResult App::run_rollback(bool automatic) {
  Slot* old_live;
  Slot* target;
  {
    std::lock_guard lock(mu_);
    old_live = live_;
    target = previous_;
  }
  if (!target)
    return refused(OpStatus::NoPrevious,
                   "nothing to roll back to: there is no previous deploy on disk");
  log::info("rollback to {} in slot {}", target->commit, target->name);
  const auto started = Clock::now();

  OpResult r;
  r.slot = std::string(1, target->name);
  r.commit = target->commit;
  r.previous_commit = old_live ? old_live->commit : "";

  auto fail = [&](const std::string& stage, const std::string& error) {
    return failed(r, fmt::format("rollback to {}", target->commit.substr(0, 12)), stage, error);
  };
  const bool keep_old = !automatic;  // an app rolled back from automatically is failing
  if (target->app) {  // a standby: switch to it, nothing started
    const std::string err = rollback_to_standby(*target, old_live, automatic);
    if (err.empty()) {
      promote(*target, old_live);
      persist();
      log::info("rolled back to {} in slot {} (its standby, pid {}) in {} ms", target->commit, target->name,
                target->app->group.leader,
                std::chrono::duration_cast<milliseconds>(Clock::now() - started).count());
      return r;
    }
    if (cancelled_) {
      park(*target);  // back to what it was
      return fail(stage_now(), err);
    }
    log::info("rollback: {}; starting slot {} afresh", err, target->name);
    stop_app(*target, "its standby could not take over");
  }
  const Ports ports = router_.ports_for_new_process();
  const bool drained_first = drain_first_if_needed(old_live, "rollback");
  if (cancelled_) return fail("drain", kCancelledError + undo_failed_start(*target, old_live, drained_first));

  set_stage("rollback", "start");
  if (auto err = start_app(*target, target->commit, ports); !err.empty()) {
    const std::string stage = target->app ? "health" : "start";
    return fail(stage, err + undo_failed_start(*target, old_live, drained_first));
  }
  if (auto err = switch_and_retire(ports, old_live, drained_first, "rollback", keep_old); !err.empty())
    return fail(cancelled_ ? stage_now() : "switch",
                err + undo_failed_start(*target, old_live, drained_first));
  promote(*target, old_live);
  persist();
  log::info("rolled back to {} in slot {} in {} ms", target->commit, target->name,
            std::chrono::duration_cast<milliseconds>(Clock::now() - started).count());
  return r;
}

}  // namespace sm::app
