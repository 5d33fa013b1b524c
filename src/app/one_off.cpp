// One-off commands (contract §16, `slot-machine run`): where they run, running one for
// the API (no terminal), remembering the ones a local CLI runs itself, journalling each.

#include <fmt/format.h>
#include <sys/wait.h>


#include "app/app.h"
#include "app/app_internal.h"
#include "app/slot_logs.h"
#include "log/log.h"
#include "process/drain.h"
#include "process/spawn.h"

namespace sm::app {
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string shell_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += '\'';
    for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

int exit_code_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

std::optional<Workers::Launch> App::run_place(const std::string& which, std::string& error, int& status) const {
  const Slot* slot;
  std::string commit;
  {
    std::lock_guard lock(mu_);
    // A deploy checks out into the slot that was previous; a rollback makes it live.
    if (which == "previous" && !operation_.empty()) {
      status = 409;
      error = fmt::format("the previous slot is being replaced ({} running); try again when it ends", operation_);
      return std::nullopt;
    }
    slot = which == "previous" ? previous_ : live_;
    if (!slot || slot->commit.empty()) {
      status = 404;
      error = which == "previous" ? "there is no previous slot to run in"
                                  : "nothing is live: deploy something first, then run commands in it";
      return std::nullopt;
    }
    commit = slot->commit;
  }
  return worker_launch(*slot, commit);
}

void App::journal_run(const std::vector<std::string>& argv, const Workers::Launch& where, int exit_code,
                      long long duration_ms, const char* how) {
  events_.publish({EventKind::Finished, 0,
                   {{"time", log::now_rfc3339()},
                    {"action", "run"},
                    {"command", shell_command(argv)},
                    {"how", how},
                    {"commit", where.commit},
                    {"slot", std::string(1, where.slot)},
                    {"previous_commit", ""},
                    {"duration_ms", duration_ms},
                    {"exit_code", exit_code},
                    {"result", exit_code == 0 ? "ok" : "failed"}}});
}

int App::run_here(const std::vector<std::string>& argv, const Workers::Launch& where,
                  const std::function<bool(const std::string&)>& line) {
  const auto dir = paths_.data_dir / "run";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  static std::atomic<uint64_t> counter{0};
  const auto log = dir / fmt::format("{}-{}.log", getpid(), ++counter);
  auto env = where.env;
  env["SLOT_MACHINE_ONE_OFF"] = "1";
  const auto began = Clock::now();
  process::ProcessGroup group;
  try {
    group = process::spawn(reaper_, {"exec " + shell_command(argv), where.cwd, log, env, token_prefix_, where.uid, where.gid});
  } catch (const std::exception& e) {
    line(fmt::format("slot-machine: the command could not start: {}", e.what()));
    journal_run(argv, where, 127, 0, "api");
    return 127;
  }
  log::info("run (api) in slot {}: {}", where.slot, shell_command(argv));
  std::uintmax_t sent = 0;
  std::string partial;
  bool listening = true;
  auto relay = [&](bool last) {
    partial += read_new(log, sent);
    for (size_t nl; listening && (nl = partial.find('\n')) != std::string::npos; partial.erase(0, nl + 1))
      listening = line(partial.substr(0, nl));
    if (last && listening && !partial.empty()) listening = line(partial);
  };
  std::optional<int> st;
  while (!(st = reaper_.exit_status(group.leader)) && listening && !stopping_) {
    reaper_.wait_change(reaper_.generation(), Clock::now() + milliseconds(50));
    relay(false);
  }
  relay(true);
  // Whatever it left running goes with it; a caller that hung up (or a daemon stopping)
  // stops the command too.
  const auto d = process::drain(reaper_, group, milliseconds(st ? 0 : cfg_.drain_timeout_ms));
  if (!st) st = d.leader_status;
  const int code = st ? exit_code_of(*st) : 128 + SIGKILL;
  std::filesystem::remove(log, ec);
  journal_run(argv, where, code, std::chrono::duration_cast<milliseconds>(Clock::now() - began).count(), "api");
  return code;
}

uint64_t App::remember_run(const std::vector<std::string>& argv, const Workers::Launch& where) {
  std::lock_guard lock(runs_mu_);
  const uint64_t id = ++last_run_id_;
  runs_[id] = {argv, where, Clock::now()};
  if (runs_.size() > 256) runs_.erase(runs_.begin());  // CLIs that never said how it ended
  log::info("run (terminal) in slot {}: {}", where.slot, shell_command(argv));
  return id;
}

bool App::ran(uint64_t id, int exit_code) {
  PendingRun run;
  {
    std::lock_guard lock(runs_mu_);
    const auto it = runs_.find(id);
    if (it == runs_.end()) return false;
    run = std::move(it->second);
    runs_.erase(it);
  }
  journal_run(run.argv, run.where, exit_code,
              std::chrono::duration_cast<milliseconds>(Clock::now() - run.began).count(), "terminal");
  return true;
}

}  // namespace sm::app
