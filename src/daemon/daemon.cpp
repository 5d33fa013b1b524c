#include "daemon/daemon.h"

#include <malloc.h>

#include <fmt/format.h>
#include <sys/wait.h>

#include <deque>
#include <fstream>

#include "config/env_file.h"
#include "daemon/journal.h"
#include "daemon/logs.h"
#include "daemon/state.h"
#include "health/health.h"
#include "log/log.h"
#include "process/drain.h"
#include "process/spawn.h"

namespace sm::daemon {
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

/// What a cancelled operation's error says (after "<operation> failed at <stage>: ").
const std::string kCancelledError = "cancelled (slot-machine cancel / POST /cancel)";

constexpr const char* kBusy = "another deploy or rollback is in progress; try again when it ends";

OpResult refused(OpStatus status, std::string error) {
  OpResult r;
  r.status = status;
  r.error = std::move(error);
  return r;
}

std::uintmax_t file_size_or_zero(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

/// A short, stable id for the data dir, so two daemons on one repo get distinct
/// worktree names.
std::string data_dir_id(const fs::path& dir) {
  uint32_t h = 2166136261u;
  for (unsigned char ch : dir.string()) h = (h ^ ch) * 16777619u;
  return fmt::format("{:08x}", h);
}

}  // namespace

Daemon::Daemon(config::Config cfg, Paths paths, git::Repository repo, process::Reaper& reaper,
               Router& router)
    : cfg_(std::move(cfg)),
      paths_(std::move(paths)),
      repo_(std::move(repo)),
      reaper_(reaper),
      router_(router),
      token_prefix_(data_dir_id(paths_.data_dir) + "."),
      base_env_(process::current_environment()) {
  fs::create_directories(paths_.data_dir);
  monitor_ = std::thread([this] { monitor(); });
}

Daemon::~Daemon() {
  begin_shutdown();
  shutdown();
}

fs::path Daemon::slot_dir(const Slot& s) const {
  return paths_.data_dir / fmt::format("slot-{}", s.name);
}

fs::path Daemon::log_path(const Slot& s) const {
  return paths_.data_dir / fmt::format("slot-{}.log", s.name);
}

void Daemon::set_stage(const std::string& op, const std::string& stage) {
  {
    std::lock_guard lock(mu_);
    operation_ = op;
    stage_ = stage;
  }
  if (!stage.empty()) emit({{"event", "stage"}, {"operation", op}, {"stage", stage}});
}

void Daemon::emit(nlohmann::json event) {
  if (!progress_) return;
  event["at_ms"] = std::chrono::duration_cast<milliseconds>(Clock::now() - op_began_).count();
  try {
    progress_(event);
  } catch (const std::exception& e) {  // a listener's failure never fails the operation
    log::info("warning: progress listener failed: {}", e.what());
    progress_ = nullptr;
  }
}

namespace {
/// Installs an operation's progress listener for as long as the operation holds the lock.
struct ProgressScope {
  Daemon::Progress& slot;
  ProgressScope(Daemon::Progress& s, Daemon::Progress p) : slot(s) { slot = std::move(p); }
  ~ProgressScope() { slot = nullptr; }
};
}  // namespace

void Daemon::append_log(const Slot& slot, const std::string& line) const {
  std::ofstream(log_path(slot), std::ios::app) << log::now_rfc3339() << " ==> " << line << "\n";
}

std::string Daemon::log_tail(const Slot& slot, std::uintmax_t from) const {
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

bool Daemon::pause_until(Clock::time_point t) const {
  if (interrupted()) return false;
  reaper_.wait_change(reaper_.generation(), t);
  return !stopping_;
}

std::map<std::string, std::string> Daemon::app_env(const Slot& slot, const std::string& commit,
                                                   const Ports& ports) const {
  auto env = base_env_;
  if (!cfg_.env_file.empty())
    for (auto& [k, v] : config::load_env_file(cfg_.env_file)) env[k] = v;
  env["PORT"] = std::to_string(ports.port);
  env["INTERNAL_PORT"] = std::to_string(ports.internal_port);
  env["SLOT_MACHINE"] = "1";
  env["SLOT_MACHINE_SLOT"] = std::string(1, slot.name);
  env["SLOT_MACHINE_COMMIT"] = commit;
  return env;
}

std::string Daemon::run_setup(Slot& slot, const std::string& commit, const Ports& ports) {
  append_log(slot, fmt::format("setup for {}: {}", commit, cfg_.setup_command));
  const auto from = file_size_or_zero(log_path(slot));
  process::ProcessGroup group;
  try {
    group = process::spawn(reaper_, {cfg_.setup_command, slot_dir(slot), log_path(slot),
                                     app_env(slot, commit, ports), token_prefix_});
  } catch (const std::exception& e) {
    return fmt::format("setup command could not start: {}", e.what());
  }
  // Setup output goes to the slot log; progress listeners get it line by line as well.
  std::uintmax_t sent = from;
  std::string partial;
  auto stream_output = [&](bool last) {
    if (!progress_) return;
    const auto size = file_size_or_zero(log_path(slot));
    if (size > sent) {
      std::ifstream in(log_path(slot), std::ios::binary);
      in.seekg(static_cast<std::streamoff>(sent));
      std::string chunk(static_cast<size_t>(size - sent), '\0');
      in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      chunk.resize(static_cast<size_t>(in.gcount()));
      sent += chunk.size();
      partial += chunk;
      for (size_t nl; (nl = partial.find('\n')) != std::string::npos; partial.erase(0, nl + 1))
        emit({{"event", "output"}, {"line", partial.substr(0, nl)}});
    }
    if (last && !partial.empty()) emit({{"event", "output"}, {"line", partial}});
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

std::string Daemon::start_app(Slot& slot, const std::string& commit, const Ports& ports) {
  auto app = std::make_unique<App>();
  app->ports = ports;
  try {
    auto env = app_env(slot, commit, ports);
    append_log(slot, fmt::format("start {} on PORT={} INTERNAL_PORT={}: {}", commit, ports.port,
                                 ports.internal_port, cfg_.start_command));
    app->log_from = file_size_or_zero(log_path(slot));
    app->group = process::spawn(reaper_, {cfg_.start_command, slot_dir(slot), log_path(slot), env, token_prefix_});
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
          emit({{"event", "health"}, {"attempt", attempt}, {"healthy", p.healthy}, {"detail", p.detail}});
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
  return fmt::format("{} ({}{}); its last output:\n{}", health::describe(result),
                     cfg_.health_endpoint, fmt::format(" on port {}", ports.internal_port),
                     log_tail(slot, from));
}

void Daemon::stop_app(Slot& slot, const char* why) {
  std::unique_ptr<App> app;
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
  std::string how = d.killed ? fmt::format("SIGKILLed after drain_timeout_ms={}", cfg_.drain_timeout_ms)
                             : "exited after SIGTERM";
  if (!d.gone) how += "; some processes could not be killed";
  append_log(slot, fmt::format("stopped ({}): {} in {} ms", why, how, d.took.count()));
  log::info("slot {}: stopped ({}): {} in {} ms", slot.name, why, how, d.took.count());
}

bool Daemon::drain_first_if_needed(Slot* live, const char* op) {
  if (!router_.must_drain_before_start() || !live || !live->app) return false;
  set_stage(op, "drain");
  stop_app(*live, "making room for the new version");
  return true;
}

std::string Daemon::undo_failed_start(Slot& target, Slot* live, bool live_was_drained) {
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

std::string Daemon::switch_and_retire(const Ports& ports, Slot* old_live, bool already_drained,
                                      const char* op) {
  const bool old_running = !already_drained && old_live && old_live->app;
  if (!old_running && !past_cancel_point()) return kCancelledError;
  set_stage(op, "switch");
  try {
    router_.switch_to(ports);
  } catch (const std::exception& e) {
    return fmt::format("cannot route traffic to the new app: {}", e.what());
  }
  if (!old_running) return "";
  set_stage(op, "drain");
  router_.wait_in_flight(old_live->app->ports, Clock::now() + milliseconds(cfg_.drain_timeout_ms),
                         [this] { return interrupted(); });
  if (!past_cancel_point()) {
    router_.switch_to(old_live->app->ports);  // back to the old app, which never stopped
    return kCancelledError;
  }
  stop_app(*old_live, "replaced");
  return "";
}

void Daemon::begin_cancellable() {
  std::lock_guard lock(mu_);
  cancelled_ = false;
  cancellable_ = true;
}

bool Daemon::past_cancel_point() {
  std::lock_guard lock(mu_);
  if (cancelled_) return false;
  cancellable_ = false;
  return true;
}

std::string Daemon::stage_now() const {
  std::lock_guard lock(mu_);
  return stage_;
}

std::optional<Daemon::Cancelled> Daemon::cancel() {
  std::lock_guard lock(mu_);
  if (operation_.empty() || !cancellable_) return std::nullopt;
  cancelled_ = true;
  log::info("cancel: stopping the {} at stage {}", operation_, stage_);
  return Cancelled{operation_, stage_};
}

OpResult Daemon::failed(OpResult r, const std::string& what, const std::string& stage,
                        const std::string& error) {
  r.status = OpStatus::Failed;
  r.cancelled = cancelled_;
  r.stage = stage;
  r.error = fmt::format("{} failed at {}: {}", what, stage, error);
  log::info("{}", r.error);
  set_stage("", "");
  return r;
}

void Daemon::promote(Slot& target, Slot* previous) {
  std::lock_guard lock(mu_);
  previous_ = previous && !previous->commit.empty() ? previous : nullptr;
  live_ = &target;
  healthy_ = true;
  ++live_generation_;
  last_deploy_time_ = log::now_rfc3339();
  live_since_ = last_deploy_time_;
  operation_.clear();
  stage_.clear();
  cancellable_ = false;
}

OpResult Daemon::deploy(const std::string& revision, Progress progress) {
  try {
    git::check_revision_syntax(revision);
  } catch (const git::GitError& e) {
    return refused(OpStatus::Invalid, e.what());
  }
  return on_op_thread("deploy", [&] { return run_deploy(revision, std::move(progress)); });
}

OpResult Daemon::rollback(Progress progress) {
  return on_op_thread("rollback", [&] { return run_rollback(std::move(progress)); });
}

OpResult Daemon::on_op_thread(const char* action, const std::function<OpResult()>& run) {
  const auto began = Clock::now();
  auto r = ops_.try_run([&] {
    OpResult out = run();
    record(action, out, began);
    // The operation freed what libgit2 and the checkout allocated (megabytes for a
    // large repository); glibc keeps freed pages mapped unless asked.
    malloc_trim(0);
    return out;
  });
  if (!r) return refused(OpStatus::Busy, kBusy);
  return *r;
}

void Daemon::record(const char* action, const OpResult& r, Clock::time_point began) {
  if (r.status != OpStatus::Ok && r.status != OpStatus::Failed) return;  // refused: nothing ran
  nlohmann::json e{{"time", log::now_rfc3339()},
                   {"action", action},
                   {"commit", r.commit},
                   {"slot", r.slot},
                   {"previous_commit", r.previous_commit},
                   {"duration_ms", std::chrono::duration_cast<milliseconds>(Clock::now() - began).count()},
                   {"result", r.status == OpStatus::Ok ? "ok" : r.cancelled ? "cancelled" : "failed"}};
  if (r.status == OpStatus::Failed) {
    e["stage"] = r.stage;
    e["error"] = r.error;
  }
  try {
    journal_append(paths_.data_dir / "journal.ndjson", e);
  } catch (const std::exception& ex) {
    log::info("warning: {}", ex.what());
  }
}

fs::path Daemon::log_file(const std::string& which, std::string& error) const {
  if (which == "a" || which == "b") return log_path(slots_[which == "a" ? 0 : 1]);
  if (which != "live" && which != "previous") {
    error = fmt::format("unknown slot \"{}\"; use live, previous, a or b", which);
    return {};
  }
  std::lock_guard lock(mu_);
  const Slot* s = which == "live" ? live_ : previous_;
  if (!s) {
    error = fmt::format("there is no {} slot yet", which);
    return {};
  }
  return log_path(*s);
}

std::vector<nlohmann::json> Daemon::history(size_t limit) const {
  return journal_read(paths_.data_dir / "journal.ndjson", limit);
}

void Daemon::persist() {
  PersistedState st;
  {
    std::lock_guard lock(mu_);
    if (live_ && !live_->commit.empty()) {
      SlotRecord r{live_->name, live_->commit, 0, "", 0, 0, live_since_};
      if (live_->app) {
        r.pgid = live_->app->group.leader;
        r.token = live_->app->group.token;
        r.port = live_->app->ports.port;
        r.internal_port = live_->app->ports.internal_port;
      }
      st.live = r;
    }
    if (previous_ && !previous_->commit.empty())
      st.previous = SlotRecord{previous_->name, previous_->commit, 0, "", 0, 0, ""};
    st.last_deploy_time = last_deploy_time_;
  }
  try {
    save_state(paths_.data_dir, st);
  } catch (const std::exception& e) {
    log::info("warning: state not saved: {}", e.what());
  }
}

std::optional<int> Daemon::exit_of(const App& app) const {
  if (app.group.adopted) return process::is_alive(app.group.leader) ? std::nullopt : std::optional<int>(-1);
  return reaper_.exit_status(app.group.leader);
}

bool Daemon::adopt(Slot& live, const SlotRecord& rec, Leftovers& leftovers) {
  auto it = leftovers.find(rec.token);
  if (rec.token.empty() || it == leftovers.end() || !process::is_alive(rec.pgid)) return false;
  auto p = health::probe_http(rec.internal_port, cfg_.health_endpoint, milliseconds(1000));
  if (!p.healthy) {
    log::info("the running app of slot {} is not healthy ({}); restarting it", live.name, p.detail);
    return false;
  }
  try {
    router_.switch_to({rec.port, rec.internal_port});
  } catch (const std::exception& e) {
    log::info("cannot route to the running app of slot {}: {}", live.name, e.what());
    return false;
  }
  auto app = std::make_unique<App>();
  app->group = {rec.pgid, rec.token, true};
  app->ports = {rec.port, rec.internal_port};
  app->log_from = file_size_or_zero(log_path(live));
  {
    std::lock_guard lock(mu_);
    live.app = std::move(app);
    live_ = &live;
    healthy_ = true;
    ++live_generation_;
  }
  leftovers.erase(it);
  log::info("adopted the running app of slot {} ({}), pid {}", live.name, live.commit, rec.pgid);
  append_log(live, fmt::format("adopted by a new daemon (pid {})", getpid()));
  return true;
}

std::string Daemon::restart_live(Slot& live) {
  set_stage("restart", "start");
  const Ports ports = router_.ports_for_new_process();
  std::string err = start_app(live, live.commit, ports);
  if (err.empty()) {
    try {
      router_.switch_to(ports);
    } catch (const std::exception& e) {
      err = fmt::format("cannot route traffic to it: {}", e.what());
    }
  }
  {
    std::lock_guard lock(mu_);
    live_ = &live;
    healthy_ = err.empty();
    ++live_generation_;
  }
  if (err.empty())
    log::info("restarted slot {} ({})", live.name, live.commit);
  else
    stop_app(live, "restart after a daemon restart failed");
  return err;
}

void Daemon::restore() {
  std::lock_guard op(op_mu_);
  const auto began = Clock::now();
  auto loaded = load_state(paths_.data_dir);
  if (!loaded.warning.empty()) log::info("warning: {}", loaded.warning);
  const PersistedState st = loaded.state.value_or(PersistedState{});
  Slot* live = st.live ? &slot_named(st.live->slot) : nullptr;
  {
    std::lock_guard lock(mu_);
    last_deploy_time_ = st.last_deploy_time;
    if (st.previous) {
      slot_named(st.previous->slot).commit = st.previous->commit;
      previous_ = &slot_named(st.previous->slot);
    }
    if (live) {
      live->commit = st.live->commit;
      live_since_ = st.live->since;
    }
  }

  Leftovers leftovers = process::processes_by_token_prefix(token_prefix_);
  const bool adopted = live && adopt(*live, *st.live, leftovers);
  if (!leftovers.empty())
    log::info("killing {} process group(s) left by an earlier daemon", leftovers.size());
  for (auto& [token, pids] : leftovers)
    process::drain(reaper_, {-1, token, true}, milliseconds(cfg_.drain_timeout_ms));

  if (live) {
    OpResult r;
    r.slot = std::string(1, live->name);
    r.commit = live->commit;
    r.previous_commit = previous_ ? previous_->commit : "";
    if (!adopted) {
      if (std::string err = restart_live(*live); !err.empty())
        r = failed(r, fmt::format("restart of {}", live->commit.substr(0, 12)), "start", err);
      set_stage("", "");
    }
    record(adopted ? "adopt" : "restart", r, began);
  }
  // Without usable state there is nothing to write yet; a corrupt file stays for a
  // human to look at until the next operation replaces it.
  if (loaded.state) persist();
}

OpResult Daemon::run_deploy(const std::string& revision, Progress progress) {
  std::unique_lock op(op_mu_, std::try_to_lock);
  if (!op.owns_lock()) return refused(OpStatus::Busy, kBusy);
  if (stopping_) return refused(OpStatus::ShuttingDown, "the daemon is shutting down");
  op_began_ = Clock::now();
  ProgressScope listening(progress_, std::move(progress));
  begin_cancellable();

  set_stage("deploy", "resolve");
  std::string commit;
  try {
    commit = repo_.resolve(revision);
  } catch (const git::GitError& e) {
    set_stage("", "");
    return refused(e.kind() == git::ErrorKind::UnknownRevision ? OpStatus::UnknownCommit
                                                               : OpStatus::Invalid,
                   e.what());
  }

  Slot* old_live;
  Slot* target;
  {
    std::lock_guard lock(mu_);
    old_live = live_;
    target = live_ == &slots_[0] ? &slots_[1] : &slots_[0];
    // The target's files are about to change: it is no longer a previous to offer.
    if (previous_ == target) previous_ = nullptr;
    target->commit.clear();
  }
  persist();  // a crash from here on must not offer the target as previous
  stop_app(*target, "its slot is being redeployed");
  log::info("deploy {} ({}) to slot {}", commit, revision, target->name);
  const auto started = Clock::now();

  OpResult r;
  r.slot = std::string(1, target->name);
  r.commit = commit;
  r.previous_commit = old_live ? old_live->commit : "";
  auto fail = [&](const std::string& stage, const std::string& error) {
    return failed(r, fmt::format("deploy of {}", commit.substr(0, 12)), stage, error);
  };

  set_stage("deploy", "checkout");
  try {
    repo_.checkout_worktree(slot_dir(*target),
                            fmt::format("slot-{}-{}", target->name, data_dir_id(paths_.data_dir)),
                            commit, [this] { return interrupted(); });
  } catch (const std::exception& e) {
    return fail("checkout", cancelled_ ? kCancelledError : e.what());
  }
  if (cancelled_) return fail("checkout", kCancelledError);

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

  if (auto err = switch_and_retire(ports, old_live, drained_first, "deploy"); !err.empty())
    return fail(cancelled_ ? stage_now() : "switch",
                err + undo_failed_start(*target, old_live, drained_first));
  {
    std::lock_guard lock(mu_);
    target->commit = commit;
  }
  promote(*target, old_live);
  persist();
  log::info("deployed {} to slot {} in {} ms", commit, target->name,
            std::chrono::duration_cast<milliseconds>(Clock::now() - started).count());
  return r;
}

OpResult Daemon::run_rollback(Progress progress) {
  std::unique_lock op(op_mu_, std::try_to_lock);
  if (!op.owns_lock()) return refused(OpStatus::Busy, kBusy);
  if (stopping_) return refused(OpStatus::ShuttingDown, "the daemon is shutting down");
  op_began_ = Clock::now();
  ProgressScope listening(progress_, std::move(progress));
  begin_cancellable();

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

  const Ports ports = router_.ports_for_new_process();
  auto fail = [&](const std::string& stage, const std::string& error) {
    return failed(r, fmt::format("rollback to {}", target->commit.substr(0, 12)), stage, error);
  };
  const bool drained_first = drain_first_if_needed(old_live, "rollback");
  if (cancelled_) return fail("drain", kCancelledError + undo_failed_start(*target, old_live, drained_first));

  set_stage("rollback", "start");
  if (auto err = start_app(*target, target->commit, ports); !err.empty()) {
    const std::string stage = target->app ? "health" : "start";
    return fail(stage, err + undo_failed_start(*target, old_live, drained_first));
  }
  if (auto err = switch_and_retire(ports, old_live, drained_first, "rollback"); !err.empty())
    return fail(cancelled_ ? stage_now() : "switch",
                err + undo_failed_start(*target, old_live, drained_first));
  promote(*target, old_live);
  persist();
  log::info("rolled back to {} in slot {} in {} ms", target->commit, target->name,
            std::chrono::duration_cast<milliseconds>(Clock::now() - started).count());
  return r;
}

Status Daemon::status() const {
  std::lock_guard lock(mu_);
  Status s;
  s.mode = router_.mode();
  s.operation = operation_;
  s.stage = stage_;
  s.last_deploy_time = last_deploy_time_;
  if (live_) {
    s.live_slot = std::string(1, live_->name);
    s.live_commit = live_->commit;
    if (live_->app) {
      s.live_pid = live_->app->group.leader;
      s.live_ports = live_->app->ports;
    }
  }
  if (previous_) {
    s.previous_slot = std::string(1, previous_->name);
    s.previous_commit = previous_->commit;
  }
  s.healthy = healthy_ && live_ && live_->app && !exit_of(*live_->app);
  s.live_since = live_ ? live_since_ : "";
  s.live_uptime_s = live_ ? log::seconds_since(live_since_) : 0;
  s.daemon_uptime_s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - born_).count();
  return s;
}

void Daemon::monitor() {
  auto next_probe = Clock::now() + milliseconds(1000);
  for (;;) {
    reaper_.wait_change(reaper_.generation(), std::min(next_probe, Clock::now() + milliseconds(1000)));
    if (monitor_stop_) return;

    int probe_port = 0;
    uint64_t generation = 0;
    {
      std::lock_guard lock(mu_);
      App* app = live_ ? live_->app.get() : nullptr;
      if (app && !app->exit_reported) {
        if (auto st = exit_of(*app)) {
          app->exit_reported = true;
          healthy_ = false;
          log::info("live app in slot {} {}; status is now unhealthy", live_->name,
                    app->group.adopted ? "exited" : process::describe_exit(*st));
        } else if (Clock::now() >= next_probe && operation_.empty()) {
          probe_port = app->ports.internal_port;
          generation = live_generation_;
        }
      }
    }
    if (Clock::now() >= next_probe) {
      next_probe = Clock::now() + milliseconds(1000);
      for (const Slot& s : slots_) {
        try {
          if (rotate_if_needed(log_path(s), static_cast<std::uintmax_t>(cfg_.log_max_bytes), cfg_.log_keep))
            append_log(s, fmt::format("log rotated (over log_max_bytes={})", cfg_.log_max_bytes));
        } catch (const std::exception& e) {
          log::info("warning: {}", e.what());
        }
      }
    }
    if (!probe_port) continue;

    auto p = health::probe_http(probe_port, cfg_.health_endpoint, milliseconds(1000));
    std::lock_guard lock(mu_);
    if (generation != live_generation_ || !live_ || !live_->app || live_->app->exit_reported)
      continue;
    if (healthy_ != p.healthy)
      log::info("live app in slot {} is now {} ({})", live_->name,
                p.healthy ? "healthy" : "unhealthy", p.detail);
    healthy_ = p.healthy;
  }
}

void Daemon::begin_shutdown() {
  stopping_ = true;
  reaper_.wake();
}

void Daemon::shutdown() {
  std::lock_guard op(op_mu_);  // the running operation gives up quickly once stopping_
  if (monitor_.joinable()) {
    monitor_stop_ = true;
    reaper_.wake();
    monitor_.join();
  }
  for (Slot& s : slots_) stop_app(s, "daemon shutting down");
}

}  // namespace sm::daemon
