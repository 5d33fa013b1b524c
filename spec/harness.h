#pragma once
// The black-box harness: real git repos, the real binaries, HTTP to the real daemon.
// Nothing here reaches into slot-machine's code; only its CLI, API and files.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <string>
#include <vector>

namespace spec {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

std::string slot_machine_bin();
std::string testapp_bin();

/// A file's whole contents ("" when it cannot be read).
std::string read_file(const fs::path& p);

/// A fresh directory under /tmp, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

/// A port in 20000-32000 that nothing listens on now (and that this run has not
/// handed out before).
int free_port();

/// True when something accepts TCP connections on 127.0.0.1:port.
bool port_open(int port, const std::string& host = "127.0.0.1");

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

/// Runs argv in cwd (extra env added), waits up to `timeout`, captures output.
RunResult run(const std::vector<std::string>& argv, const fs::path& cwd,
              const std::map<std::string, std::string>& env = {},
              std::chrono::milliseconds timeout = 30s);

/// Runs a shell command for test set-up (git, files); fails the test when it fails.
std::string sh(const std::string& command, const fs::path& cwd);

/// A git repository holding a testapp "app": each commit has a VERSION file and a
/// `flags` file with testapp flags. slot-machine.json lives outside the repo.
class AppRepo {
 public:
  AppRepo();
  const fs::path& dir() const { return repo_.path; }
  const fs::path& home() const { return home_.path; }  // for config, data, logs
  fs::path config_path() const { return home_.path / "slot-machine.json"; }
  fs::path data_dir() const { return home_.path / "data"; }

  /// Commits VERSION=version and flags=flags (plus extra files); returns the full hash.
  std::string commit(const std::string& version, const std::string& flags = "",
                     const std::map<std::string, std::string>& files = {});

  /// Writes slot-machine.json: testapp start command, fresh ports, fast timeouts,
  /// then `overrides` merged over it.
  json write_config(const json& overrides = json::object());
  const json& config() const { return config_; }

 private:
  TempDir repo_, home_;
  json config_;
};

/// `slot-machine start` with the repo's config written with `overrides` (direct mode with
/// `direct`), for configs that must be refused: its output and exit code (10 s at most).
RunResult start_refused(AppRepo& repo, const json& overrides, bool direct = false);

/// Writes `secret` and a newline to repo.home()/<name> with mode 0600 (a token or secret
/// file the config names); returns its path.
fs::path secret_file(const AppRepo& repo, const std::string& name, const std::string& secret);

/// Lower-case hex HMAC-SHA256 of `body` with `key` (OpenSSL), as signers send it.
std::string hmac_hex(const std::string& key, const std::string& body);

/// A self-signed ECDSA certificate for localhost and 127.0.0.1 in repo.home()/<name>.crt
/// and <name>.key (openssl req), valid for two days.
std::pair<fs::path, fs::path> self_signed_cert(const AppRepo& repo, const std::string& name);

/// An HTTP answer: status (0 when no connection) and body.
struct Http {
  int status = 0;
  std::string body;
  json json_body() const;
};
Http http_get(int port, const std::string& path, std::chrono::milliseconds timeout = 10s);
Http http_post(int port, const std::string& path, const std::string& body,
               std::chrono::milliseconds timeout = 60s);
/// GETs a stream (`logs?follow=1`, `/events`), reads its first bytes and hangs up, as a
/// closed browser tab does: the status and those bytes (status 0 when no connection).
Http get_first_bytes(int port, const std::string& path, const std::map<std::string, std::string>& headers = {});

/// No extra arguments: the daemon in proxy mode.
inline const std::vector<std::string> kProxyMode{};

/// How to start a daemon, beyond the defaults.
struct Launch {
  std::vector<std::string> extra_args = {"--no-proxy"};
  std::map<std::string, std::string> env;  // added to the test's environment
  std::vector<std::string> wrapper;        // argv before the binary (systemd-socket-activate ...)
  /// Listening sockets passed as LISTEN_FDS with these names (a test-owned holder: the
  /// descriptors stay the test's, so a restarted daemon gets the same sockets).
  std::vector<std::pair<std::string, int>> sockets;
  std::string binary;  // another path for slot-machine (default: the one built)
  bool https_api = false;  // the config has api_tls: wait for the API over HTTPS
  fs::path repo;           // another repository for --repo (default: the AppRepo's)
};

/// A Launch with `extra_args` and nothing else.
Launch with_args(std::vector<std::string> extra_args);

/// One `slot-machine start` process for an AppRepo, tagged so that every process it
/// starts can be found by its environment.
class Daemon {
 public:
  explicit Daemon(AppRepo& repo, std::vector<std::string> extra_args = {"--no-proxy"});
  Daemon(AppRepo& repo, Launch how);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  int api_port() const { return api_port_; }
  int public_port() const { return repo_.config()["port"]; }
  int internal_port() const { return repo_.config()["internal_port"]; }
  pid_t pid() const { return pid_; }
  const std::string& tag() const { return tag_; }
  fs::path data_dir() const { return repo_.data_dir(); }

  Http deploy(const std::string& commit);
  Http rollback();
  json status();
  /// Polls /status until pred holds or `timeout` passes; returns the last status.
  template <typename Pred>
  json wait_status(Pred pred, std::chrono::milliseconds timeout);

  /// Sends `sig`, waits up to `timeout` for the daemon to exit; returns its exit code
  /// (128+signal when killed, -1 when still running).
  int stop(int sig = 15, std::chrono::milliseconds timeout = 20s);
  /// Starts the same daemon (same command, tag and data dir) again after stop();
  /// returns once its API answers.
  void restart();
  /// Whether stop() has seen it exit (or a test stopped it).
  bool stopped() const { return exit_code_ != -1; }
  /// The daemon's own stderr so far (every run of it).
  std::string log() const;
  /// Runs the CLI (`slot-machine <args>`) from the repo dir against this daemon.
  RunResult cli(const std::vector<std::string>& args) const;
  /// After an upgrade: waits for the old daemon to exit and returns its exit code (0
  /// for one that is not this process's child and has gone); from then on this object
  /// stands for `new_pid`.
  int follow_upgrade(pid_t new_pid);

 private:
  void launch();

  AppRepo& repo_;
  std::vector<std::string> argv_;
  std::string tag_;
  int api_port_;
  Launch how_;
  pid_t pid_ = -1;
  bool foreign_ = false;  // pid_ is not our child (it came from an upgrade)
  int exit_code_ = -1;
};

/// Processes (other than zombies) whose environment carries SPEC_TAG=tag.
std::vector<pid_t> tagged_processes(const std::string& tag);
/// SIGKILLs them all (clean-up after a failed test, so one failure does not cascade).
void kill_tagged(const std::string& tag);

template <typename Pred>
json Daemon::wait_status(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  json s = status();
  while (!pred(s) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    s = status();
  }
  return s;
}

}  // namespace spec

namespace spec {
/// Fails the test when `text` holds an ASan/UBSan/LSan report (UBSan writes to stderr
/// even when ASAN_OPTIONS sets log_path, so the daemon's and apps' logs are read too).
void check_no_sanitizer_report(const std::string& text, const std::string& where);
/// The contract's clean shutdown: SIGTERM → exit 0 and no process of the daemon left.
void check_clean_stop(Daemon& d);

/// One commit of a Site: testapp's VERSION and flags (and extra files).
struct Version {
  Version(std::string version, std::string flags = "", std::map<std::string, std::string> files = {})
      : version(std::move(version)), flags(std::move(flags)), files(std::move(files)) {}
  std::string version, flags;
  std::map<std::string, std::string> files;
};

/// The set-up most cases share: a repository with `versions` committed in order
/// (`commits`, their hashes), its config written with `overrides`, and a daemon started
/// (`how`: direct mode unless it says otherwise). It ends the way the contract says a
/// daemon stops (check_clean_stop), unless the case stopped the daemon itself or has
/// already failed a REQUIRE.
struct Site {
  Site(std::initializer_list<Version> versions, const json& overrides = json::object(), Launch how = {});
  Site(std::initializer_list<Version> versions, const json& overrides, std::vector<std::string> extra_args);
  ~Site();
  Site(const Site&) = delete;
  Site& operator=(const Site&) = delete;

  AppRepo repo;
  std::vector<std::string> commits;
  Daemon d;
};
}  // namespace spec

namespace spec {
/// Sends raw bytes to 127.0.0.1:port and returns what comes back until the peer closes
/// (or 5 s pass).
std::string raw_exchange(int port, const std::string& bytes);
/// Sends raw bytes and reads until `until` has arrived (then what else is already there),
/// the peer closes, or 5 s pass: for a connection that stays open (a WebSocket).
std::string raw_exchange(int port, const std::string& bytes, const std::string& until);
}  // namespace spec
