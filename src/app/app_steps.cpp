#include "app/app.h"

#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <deque>
#include <fstream>

#include "config/env_file.h"
#include "files/owner.h"
#include "health/health.h"
#include "log/log.h"
#include "process/drain.h"
#include "process/spawn.h"

#include "app/app_internal.h"
#include "app/slot_logs.h"

namespace sm::app {
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

void App::append_log(const Slot& slot, const std::string& line) const { append_note(log_path(slot), line); }

std::string App::log_tail(const Slot& slot, std::uintmax_t from) const {
  std::ifstream in(log_path(slot), std::ios::binary);
  if (from > file_size_or_zero(log_path(slot))) from = 0;  // rotated since
  in.seekg(static_cast<std::streamoff>(from));
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > 300) line = line.substr(0, 300) + "...";
    lines.push_back(std::move(line));
    if (lines.size() > 20) lines.pop_front();
  }
  if (lines.empty()) return "(no output)";
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}

bool App::pause_until(Clock::time_point t) const {
  if (interrupted()) return false;
  reaper_.wait_change(reaper_.generation(), t);
  return !stopping_;
}

std::map<std::string, std::string> App::app_env(const Slot& slot, const std::string& commit,
                                                   const Ports& ports) const {
  auto env = base_env_;
  env.erase("NOTIFY_SOCKET");  // systemd's channel is the daemon's, not the app's
  env.erase("SLOT_MACHINE_API_TOKEN");  // nor is the API's token
  if (!cfg_.env_file.empty())
    for (auto& [k, v] : config::load_env_file(cfg_.env_file)) env[k] = v;
  env["PORT"] = std::to_string(ports.port);
  env["INTERNAL_PORT"] = std::to_string(ports.internal_port);
  env.insert_or_assign("SLOT_MACHINE", std::string(1, '1'));  // not = "1": GCC 12 warns falsely (-Wrestrict) on that
  env["SLOT_MACHINE_SLOT"] = std::string(1, slot.name);
  env["SLOT_MACHINE_COMMIT"] = commit;
  if (cfg_.run_uid >= 0) {  // its own user's home and name, not the daemon's
    passwd pw{}, *found = nullptr;
    std::vector<char> buf(16384);
    if (getpwuid_r(static_cast<uid_t>(cfg_.run_uid), &pw, buf.data(), buf.size(), &found) == 0 && found)
      env["USER"] = env["LOGNAME"] = found->pw_name;
    env["HOME"] = run_home_.string();
  }
  return env;
}

fs::path App::home_of_run_user() const {
  passwd pw{}, *found = nullptr;
  std::vector<char> buf(16384);
  struct stat st {};
  // A system user's home is often not its own (www-data's /var/www, nobody's
  // /nonexistent), and tools such as npm write their caches there: then the app gets
  // <data>/home, its own.
  if (getpwuid_r(static_cast<uid_t>(cfg_.run_uid), &pw, buf.data(), buf.size(), &found) == 0 && found &&
      stat(found->pw_dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == static_cast<uid_t>(cfg_.run_uid))
    return found->pw_dir;
  const fs::path home = paths_.data_dir / "home";
  std::error_code ec;
  fs::create_directories(home, ec);
  if (lchown(home.c_str(), cfg_.run_uid, cfg_.run_gid) != 0 || ec)
    log::info("warning: cannot make {} the app user's home: {}", home.string(), ec ? ec.message() : strerror(errno));
  fs::permissions(home, fs::perms::owner_all, fs::perm_options::replace, ec);
  return home;
}

std::string App::give_to_app_user(const fs::path& dir) const {
  if (cfg_.run_uid < 0) return "";
  if (auto err = files::chown_tree(dir, cfg_.run_uid, cfg_.run_gid); !err.empty()) return err;
  const fs::path shared = paths_.data_dir / "shared";
  std::error_code ec;
  if (fs::exists(shared, ec)) return files::chown_tree(shared, cfg_.run_uid, cfg_.run_gid);
  return "";
}

std::string App::run_setup(Slot& slot, const std::string& commit, const Ports& ports) {
  append_log(slot, fmt::format("setup for {}: {}", commit, cfg_.setup_command));
  const auto from = file_size_or_zero(log_path(slot));
  process::ProcessGroup group;
  try {
    group = process::spawn(reaper_, {cfg_.setup_command, slot_dir(slot), log_path(slot),
                                     app_env(slot, commit, ports), token_prefix_, cfg_.run_uid, cfg_.run_gid});
  } catch (const std::exception& e) {
    return fmt::format("setup command could not start: {}", e.what());
  }
  // Setup output goes to the slot log, and line by line to the event stream as well.
  std::uintmax_t sent = from;
  std::string partial;
  auto stream_output = [&](bool last) {
    partial += read_new(log_path(slot), sent);
    for (size_t nl; (nl = partial.find('\n')) != std::string::npos; partial.erase(0, nl + 1))
      emit(EventKind::Output, {{"line", partial.substr(0, nl)}});
    if (last && !partial.empty()) emit(EventKind::Output, {{"line", partial}});
  };
  const auto began = Clock::now();
  const auto deadline = cfg_.setup_timeout_ms ? began + milliseconds(cfg_.setup_timeout_ms)
                                              : Clock::time_point::max();
  std::optional<int> status;
  while (!(status = reaper_.exit_status(group.leader)) && !interrupted() && Clock::now() < deadline) {
    reaper_.wait_change(reaper_.generation(), std::min(deadline, Clock::now() + milliseconds(100)));
    stream_output(false);
  }
  stream_output(true);
  // Setup must not leave anything behind: whatever it started in the background goes
  // (and, at the deadline, the setup itself: its whole process group).
  process::drain(reaper_, group, milliseconds(0));
  if (!status && cancelled_) return kCancelledError;
  if (!status && stopping_) return "setup abandoned: the daemon is shutting down";
  if (!status) {
    const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - began).count();
    append_log(slot, fmt::format("setup timed out after {} ms; killed", took));
    return fmt::format("setup command `{}` timed out after {} ms (setup_timeout_ms is {}) and was "
                       "killed; raise setup_timeout_ms if it needs longer; its last output:\n{}",
                       cfg_.setup_command, took, cfg_.setup_timeout_ms, log_tail(slot, from));
  }
  append_log(slot, fmt::format("setup {}", process::describe_exit(*status)));
  if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) return "";
  return fmt::format("setup command `{}` {}; its last output:\n{}", cfg_.setup_command,
                     process::describe_exit(*status), log_tail(slot, from));
}

std::string App::start_app(Slot& slot, const std::string& commit, const Ports& ports) {
  auto app = std::make_unique<Running>();
  app->ports = ports;
  try {
    auto env = app_env(slot, commit, ports);
    append_log(slot, fmt::format("start {} on PORT={} INTERNAL_PORT={}: {}", commit, ports.port,
                                 ports.internal_port, cfg_.start_command));
    app->log_from = file_size_or_zero(log_path(slot));
    app->group = process::spawn(reaper_, {cfg_.start_command, slot_dir(slot), log_path(slot), env, token_prefix_,
                                          cfg_.run_uid, cfg_.run_gid});
  } catch (const std::exception& e) {
    return fmt::format("the app could not start: {}", e.what());
  }
  const pid_t leader = app->group.leader;
  const auto from = app->log_from;
  {
    std::lock_guard lock(mu_);
    slot.app = std::move(app);
  }
  std::string op;
  {
    std::lock_guard lock(mu_);
    op = operation_;
  }
  set_stage(op, "health");
  const auto deadline = Clock::now() + milliseconds(cfg_.health_timeout_ms);
  int attempt = 0;
  std::string last_detail;
  auto last_emit = Clock::now() - milliseconds(1000);
  health::Watch watch{
      [&] {
        auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        auto p = health::probe_http(ports.internal_port, cfg_.health_endpoint,
                                    std::clamp(left, milliseconds(50), milliseconds(1000)));
        ++attempt;
        if (p.healthy || p.detail != last_detail || Clock::now() - last_emit >= milliseconds(500)) {
          emit(EventKind::Health, {{"attempt", attempt}, {"healthy", p.healthy}, {"detail", p.detail}});
          last_detail = p.detail;
          last_emit = Clock::now();
        }
        return p;
      },
      [&] { return reaper_.exit_status(leader); },
      [&](Clock::time_point t) { return pause_until(t); }};
  auto result = health::wait_healthy(watch, milliseconds(cfg_.health_timeout_ms));
  if (result.outcome == health::Outcome::Cancelled && cancelled_) {
    append_log(slot, "health check cancelled");
    return kCancelledError;
  }
  append_log(slot, health::describe(result));
  if (result.outcome == health::Outcome::Healthy) return "";
  // An app that only listens on PORT never answers a health check sent to a separate
  // INTERNAL_PORT: say so, since its output ("listening on 17701") looks healthy.
  std::string hint;
  if (ports.internal_port != ports.port && result.last_detail == "connection refused")
    hint = fmt::format("; nothing listened on INTERNAL_PORT ({}), where health checks go because "
                       "internal_port is set apart from port: have the app serve {} on $INTERNAL_PORT, "
                       "or remove internal_port from the config",
                       ports.internal_port, cfg_.health_endpoint);
  return fmt::format("{} ({} on port {}{}); its last output:\n{}", health::describe(result),
                     cfg_.health_endpoint, ports.internal_port, hint, log_tail(slot, from));
}

Workers::Launch App::worker_launch(const Slot& slot, const std::string& commit) const {
  auto env = app_env(slot, commit, {});
  env.erase("PORT");  // a worker serves nothing
  env.erase("INTERNAL_PORT");
  return {slot.name, commit, slot_dir(slot), std::move(env), cfg_.run_uid, cfg_.run_gid};
}

std::optional<Workers::Launch> App::live_launch() const {
  const Slot* live;
  std::string commit;
  {
    std::lock_guard lock(mu_);
    if (!live_ || live_->commit.empty()) return std::nullopt;
    live = live_;
    commit = live_->commit;
  }
  return worker_launch(*live, commit);
}

void App::stop_app(Slot& slot, const char* why) {
  std::unique_ptr<Running> app;
  {
    std::lock_guard lock(mu_);
    app = std::move(slot.app);
    if (&slot == live_) {
      healthy_ = false;
      ++live_generation_;
    }
  }
  if (!app) return;
  auto d = process::drain(reaper_, app->group, milliseconds(cfg_.drain_timeout_ms));
  const std::string how = process::describe(d, milliseconds(cfg_.drain_timeout_ms));
  append_log(slot, fmt::format("stopped ({}): {} in {} ms", why, how, d.took.count()));
  log::info("slot {}: stopped ({}): {} in {} ms", slot.name, why, how, d.took.count());
}

bool App::drain_first_if_needed(Slot* live, const char* op) {
  if (!router_.must_drain_before_start() || !live || !live->app) return false;
  set_stage(op, "drain");
  stop_app(*live, "making room for the new version");
  return true;
}

std::string App::undo_failed_start(Slot& target, Slot* live, bool live_was_drained) {
  // Bringing the old live version back is what a cancel asks for: it must not stop it.
  restoring_ = true;
  struct Restored {
    std::atomic<bool>& flag;
    ~Restored() { flag = false; }
  } restored{restoring_};
  stop_app(target, "it failed to come up");
  if (!live_was_drained || !live) return "";
  const Ports ports = router_.ports_for_new_process();
  if (std::string err = start_app(*live, live->commit, ports); !err.empty()) {
    stop_app(*live, "restart of the live version failed");
    return fmt::format("\n(the live version {} could not be started again: {})",
                       live->commit.substr(0, 12), err);
  }
  try {
    router_.switch_to(ports);
  } catch (const std::exception& e) {
    stop_app(*live, "traffic could not be routed to it");
    return fmt::format("\n(the live version {} could not be routed to again: {})",
                       live->commit.substr(0, 12), e.what());
  }
  {
    std::lock_guard lock(mu_);
    healthy_ = true;
    ++live_generation_;
  }
  persist();
  return fmt::format("\n(the live version {} was started again)", live->commit.substr(0, 12));
}

std::string App::switch_and_retire(const Ports& ports, Slot* old_live, bool already_drained,
                                      const char* op, bool to_standby) {
  const bool old_running = !already_drained && old_live && old_live->app;
  if (!old_running && !past_cancel_point()) return kCancelledError;
  set_stage(op, "switch");
  try {
    router_.switch_to(ports);
  } catch (const std::exception& e) {
    return fmt::format("cannot route traffic to the new app: {}", e.what());
  }
  if (!old_running) return "";
  // A warm standby keeps running: its requests (and WebSocket tunnels) finish on their
  // own. Anything else waits for them first: it is about to be stopped or frozen.
  if (!(to_standby && cfg_.standby == "warm")) {
    set_stage(op, "drain");
    router_.wait_in_flight(old_live->app->ports, Clock::now() + milliseconds(cfg_.drain_timeout_ms),
                           [this] { return interrupted(); });
  }
  if (!past_cancel_point()) {
    router_.switch_to(old_live->app->ports);  // back to the old app, which never stopped
    return kCancelledError;
  }
  if (to_standby && cfg_.standby != "off")
    park(*old_live);
  else
    stop_app(*old_live, "replaced");
  return "";
}

}  // namespace sm::app
