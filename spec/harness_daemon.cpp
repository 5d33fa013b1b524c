// The harness's Daemon: one `slot-machine start` for an AppRepo, found again after
// upgrades, stopped cleanly or killed, and every process it started found by its tag.

#include <dirent.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "harness.h"
#include "harness_process.h"

namespace spec {
using namespace detail;

Launch with_args(std::vector<std::string> extra_args) {
  Launch how;
  how.extra_args = std::move(extra_args);
  return how;
}

Daemon::Daemon(AppRepo& repo, std::vector<std::string> extra_args)
    : Daemon(repo, with_args(std::move(extra_args))) {}

Daemon::Daemon(AppRepo& repo, Launch how)
    : repo_(repo), tag_(unique_tag()), api_port_(repo.config()["api_port"]), how_(std::move(how)) {
  argv_ = how_.wrapper;
  if (!how_.sockets.empty()) {
    // A holder passes sockets as systemd does: LISTEN_PID must be the daemon's own pid,
    // which a shell knows before it execs the daemon.
    std::string names;
    for (const auto& [name, fd] : how_.sockets) names += (names.empty() ? "" : ":") + name;
    argv_ = {"/bin/sh", "-c", "LISTEN_PID=$$ exec \"$0\" \"$@\""};
    how_.env["LISTEN_FDS"] = std::to_string(how_.sockets.size());
    how_.env["LISTEN_FDNAMES"] = names;
  }
  argv_.insert(argv_.end(), {how_.binary.empty() ? slot_machine_bin() : how_.binary, "start",
                             "--config", repo.config_path().string(),
                             "--repo", how_.repo.empty() ? repo.dir().string() : how_.repo.string(),
                             "--data", repo.data_dir().string()});
  argv_.insert(argv_.end(), how_.extra_args.begin(), how_.extra_args.end());
  launch();
}

void Daemon::launch() {
  exit_code_ = -1;
  foreign_ = false;
  auto env = how_.env;
  env["SPEC_TAG"] = tag_;
  env["TESTAPP"] = testapp_bin();
  std::vector<int> fds;
  for (const auto& [name, fd] : how_.sockets) fds.push_back(fd);
  pid_ = spawn_with(argv_, repo_.home(), env, repo_.home() / "daemon.out",
                    repo_.home() / "daemon.err", fds);
  auto deadline = std::chrono::steady_clock::now() + 15s;
  auto answers = [&] {
    if (!how_.https_api) return http_get(api_port_, "/", 1s).status == 200;
    httplib::SSLClient c("127.0.0.1", api_port_);
    c.enable_server_certificate_verification(false);
    c.set_connection_timeout(1, 0);
    auto r = c.Get("/");
    return r && r->status == 200;
  };
  while (!answers()) {
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL("daemon exited at start:\n" << log());
    }
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "daemon did not answer:\n" << log());
    std::this_thread::sleep_for(10ms);
  }
}

void Daemon::restart() {
  REQUIRE_MESSAGE(exit_code_ != -1, "restart() needs the daemon stopped first");
  launch();
}

Daemon::~Daemon() {
  if (pid_ > 0 && exit_code_ == -1) {
    kill(pid_, SIGKILL);
    if (!foreign_) waitpid(pid_, nullptr, 0);
  }
  kill_tagged(tag_);
}

namespace {
/// Whether a process has gone (or is a zombie nobody reaped yet).
bool gone(pid_t pid) {
  std::string stat = read_file(fmt::format("/proc/{}/stat", pid));
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z';
}

/// Waits up to `timeout` for a process that is not our child to go; whether it went.
bool wait_gone(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!gone(pid) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  return gone(pid);
}
}  // namespace

int Daemon::follow_upgrade(pid_t new_pid) {
  int old_exit = -1;
  if (!foreign_) {
    old_exit = wait_exit(pid_, 20s);
  } else if (wait_gone(pid_, 20s)) {  // not our child: gone in time counts as 0
    old_exit = 0;
  }
  pid_ = new_pid;
  foreign_ = true;
  return old_exit;
}

Http Daemon::deploy(const std::string& commit) {
  return http_post(api_port_, "/deploy", json{{"commit", commit}}.dump());
}

Http Daemon::rollback() { return http_post(api_port_, "/rollback", "{}"); }

json Daemon::status() {
  Http h = http_get(api_port_, "/status");
  REQUIRE_MESSAGE(h.status == 200, "GET /status answered " << h.status);
  return h.json_body();
}

int Daemon::stop(int sig, std::chrono::milliseconds timeout) {
  if (exit_code_ != -1) return exit_code_;
  kill(pid_, sig);
  if (!foreign_) {
    exit_code_ = wait_exit(pid_, timeout);
    return exit_code_;
  }
  // Not our child: its exit code is not ours to read. Gone in time and its own last
  // words saying it stopped count as 0.
  if (!wait_gone(pid_, timeout)) return -1;
  const std::string l = log();
  exit_code_ = sig == SIGKILL ? 128 + SIGKILL
               : l.rfind("slot-machine: stopped\n") == l.size() - std::strlen("slot-machine: stopped\n") ? 0 : 1;
  return exit_code_;
}

std::string Daemon::log() const { return read_file(repo_.home() / "daemon.err"); }

RunResult Daemon::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {slot_machine_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--api-port");
  argv.push_back(std::to_string(api_port_));
  return run(argv, repo_.dir());
}

std::vector<pid_t> tagged_processes(const std::string& tag) {
  const std::string needle = "SPEC_TAG=" + tag;
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    if (gone(pid)) continue;
    std::string env = read_file(fmt::format("/proc/{}/environ", pid));
    for (size_t pos = 0; pos < env.size();) {
      size_t end = env.find('\0', pos);
      if (end == std::string::npos) end = env.size();
      if (env.compare(pos, end - pos, needle) == 0) {
        out.push_back(pid);
        break;
      }
      pos = end + 1;
    }
  }
  closedir(d);
  return out;
}

void kill_tagged(const std::string& tag) {
  for (int i = 0; i < 100; ++i) {
    auto left = tagged_processes(tag);
    if (left.empty()) return;
    for (pid_t p : left) kill(p, SIGKILL);
    std::this_thread::sleep_for(10ms);
  }
}

}  // namespace spec
