// Contract §7: running it as a service — upgrade without downtime, sd_notify, socket
// activation (systemd-socket-activate and a test-owned holder of the sockets).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "harness.h"

using namespace spec;

namespace {

/// Requests to the public port from `threads` threads until stopped: with keep-alive
/// (the daemon's hand-over closes connections as their requests finish) or a new
/// connection each time. Counts answers, failures, and refused connections apart.
class Load {
 public:
  Load(int port, int threads, bool keep_alive) {
    for (int i = 0; i < threads; ++i)
      workers_.emplace_back([this, port, keep_alive] {
        httplib::Client c("127.0.0.1", port);
        c.set_keep_alive(keep_alive);
        c.set_connection_timeout(5, 0);
        c.set_read_timeout(10, 0);
        while (!stop_) {
          auto r = c.Get("/");
          if (r && r->status == 200) {
            ++ok_;
          } else {
            ++failed_;
            if (!r && r.error() == httplib::Error::Connection) ++refused_;
            std::lock_guard lock(mu_);
            if (first_failure_.empty())
              first_failure_ = r ? "HTTP " + std::to_string(r->status) : httplib::to_string(r.error());
          }
        }
      });
  }
  ~Load() { finish(); }
  void finish() {
    stop_ = true;
    for (auto& t : workers_)
      if (t.joinable()) t.join();
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }
  int refused() const { return refused_; }
  std::string first_failure() {
    std::lock_guard lock(mu_);
    return first_failure_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0}, refused_{0};
  std::mutex mu_;
  std::string first_failure_;
  std::vector<std::thread> workers_;
};

/// A listening socket on 127.0.0.1:port, owned by the test (the "holder"), well above
/// the descriptors it is passed as.
struct HeldSocket {
  int fd = -1;
  explicit HeldSocket(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(s, 4096) == 0);
    fd = fcntl(s, F_DUPFD_CLOEXEC, 100);
    close(s);
  }
  ~HeldSocket() { close(fd); }
};

/// POST /upgrade; on success the harness follows the new daemon. Returns the answer.
Http upgrade(Daemon& d) {
  Http h = http_post(d.api_port(), "/upgrade", "{}", 90s);
  if (h.status == 200) {
    const int old_exit = d.follow_upgrade(h.json_body()["pid"].get<pid_t>());
    CHECK_MESSAGE(old_exit == 0, "old daemon exit " << old_exit << "\n" << d.log());
  }
  return h;
}

/// A datagram socket standing in for systemd's NOTIFY_SOCKET; collects what it gets.
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{0, 100000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    reader_ = std::thread([this] {
      char buf[4096];
      while (!stop_) {
        ssize_t n = recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) continue;
        std::lock_guard lock(mu_);
        messages_.emplace_back(buf, static_cast<size_t>(n));
      }
    });
  }
  ~NotifySocket() {
    stop_ = true;
    reader_.join();
    close(fd_);
  }
  std::vector<std::string> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }
  /// Waits up to `timeout` for a message containing `needle`; returns it ("" if none).
  std::string wait_for(const std::string& needle, std::chrono::milliseconds timeout = 5s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (const auto& m : messages())
        if (m.find(needle) != std::string::npos) return m;
      if (std::chrono::steady_clock::now() > deadline) return "";
      std::this_thread::sleep_for(10ms);
    }
  }

 private:
  fs::path path_;
  int fd_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> messages_;
  std::thread reader_;
};

}  // namespace

TEST_CASE("upgrade: a new daemon takes the sockets and adopts the app (same pid), under load") {
  AppRepo repo;
  std::string v1 = repo.commit("v1");
  repo.write_config();
  Daemon d(repo, kProxyMode);  // proxy mode
  REQUIRE(d.deploy(v1).status == 200);
  const json before = d.status();
  const int app_pid = before["live_pid"];
  CHECK(before["daemon_pid"] == d.pid());
  CHECK(before["daemon_version"].get<std::string>().size() > 0);

  Load keep_alive(d.public_port(), 3, true), fresh(d.public_port(), 2, false);
  std::this_thread::sleep_for(200ms);
  pid_t last = d.pid();
  for (int i = 0; i < 3; ++i) {
    Http h = upgrade(d);
    REQUIRE_MESSAGE(h.status == 200, h.body);
    const json body = h.json_body();
    CHECK(body["success"] == true);
    CHECK(body["pid"] != last);
    CHECK(body["version"] == before["daemon_version"]);
    last = body["pid"];
    std::this_thread::sleep_for(150ms);
  }
  keep_alive.finish();
  fresh.finish();
  CHECK_MESSAGE(keep_alive.failed() + fresh.failed() == 0,
                keep_alive.failed() << "+" << fresh.failed() << " failed of "
                                    << keep_alive.ok() + fresh.ok() << "; first: "
                                    << keep_alive.first_failure() << fresh.first_failure());
  CHECK(keep_alive.ok() > 50);
  CHECK(fresh.ok() > 50);

  const json after = d.status();
  CHECK(after["daemon_pid"] == last);
  CHECK(after["live_pid"] == app_pid);  // adopted, not restarted
  CHECK(after["healthy"] == true);
  CHECK(after["live_commit"] == v1);
  // The new daemon runs operations as the old one did.
  std::string v2 = repo.commit("v2");
  CHECK(d.deploy(v2).status == 200);
  CHECK(http_get(d.public_port(), "/").body.find("v2") != std::string::npos);
  CHECK(d.log().find("handed over to the new daemon") != std::string::npos);
  check_clean_stop(d);
}

TEST_CASE("upgrade: the binary now at the path is what runs; a broken one leaves the old daemon serving") {
  AppRepo repo;
  std::string v1 = repo.commit("v1");
  repo.write_config();
  const fs::path bin = repo.home() / "bin" / "slot-machine";
  fs::create_directories(bin.parent_path());
  fs::copy_file(slot_machine_bin(), bin);
  Launch how;
  how.binary = bin.string();
  Daemon d(repo, how);
  REQUIRE(d.deploy(v1).status == 200);
  const pid_t first = d.pid();
  // Replaced as a package upgrade does: a new file renamed over the old one.
  auto install = [&](const std::string& text) {
    const fs::path tmp = bin.string() + ".new";
    std::ofstream(tmp) << text;
    fs::permissions(tmp, fs::perms::owner_all);
    fs::rename(tmp, bin);
  };

  install("#!/bin/sh\necho 'this build is broken' >&2\nexit 3\n");
  Http h = http_post(d.api_port(), "/upgrade", "{}", 60s);
  CHECK(h.status == 500);
  CHECK_MESSAGE(h.json_body()["error"].get<std::string>().find("exited with status 3") != std::string::npos, h.body);
  CHECK(d.status()["daemon_pid"] == first);

  fs::remove(bin);
  h = http_post(d.api_port(), "/upgrade", "{}", 60s);
  CHECK(h.status == 500);
  CHECK_MESSAGE(h.json_body()["error"].get<std::string>().find(bin.string()) != std::string::npos, h.body);
  std::ofstream(bin) << "not executable";
  h = http_post(d.api_port(), "/upgrade", "{}", 60s);
  CHECK(h.status == 500);
  CHECK(h.json_body()["error"].get<std::string>().find("Permission denied") != std::string::npos);

  // An invalid config: the new daemon says why, the old one keeps serving.
  install(fmt::format("#!/bin/sh\nexec {} \"$@\"\n", slot_machine_bin()));
  const std::string good_config = read_file(repo.config_path());
  std::ofstream(repo.config_path()) << "{\"start_command\": 42}";
  h = http_post(d.api_port(), "/upgrade", "{}", 60s);
  CHECK(h.status == 500);
  CHECK_MESSAGE(h.json_body()["error"].get<std::string>().find("start_command") != std::string::npos, h.body);
  CHECK(d.status()["daemon_pid"] == first);
  CHECK(d.deploy(v1).status == 200);  // operations still run here
  std::ofstream(repo.config_path()) << good_config;

  // The new file, marked so we can tell it ran.
  install(fmt::format("#!/bin/sh\nexport UPGRADED_FROM_FILE=yes\nexec {} \"$@\"\n", slot_machine_bin()));
  h = upgrade(d);
  REQUIRE_MESSAGE(h.status == 200, h.body);
  CHECK(read_file(fmt::format("/proc/{}/environ", d.pid())).find("UPGRADED_FROM_FILE=yes") != std::string::npos);
  CHECK(d.status()["healthy"] == true);
  check_clean_stop(d);
}

TEST_CASE("upgrade: 409 while a deploy runs; SIGUSR2 upgrades too") {
  AppRepo repo;
  std::string v1 = repo.commit("v1");
  std::string v2 = repo.commit("v2");
  repo.write_config({{"setup_command", "sleep 1"}});
  Daemon d(repo, kProxyMode);
  REQUIRE(d.deploy(v1).status == 200);
  std::thread deploying([&] { CHECK(d.deploy(v2).status == 200); });
  d.wait_status([](const json& s) { return s["operation"] == "deploy"; }, 5s);
  Http h = http_post(d.api_port(), "/upgrade", "{}", 10s);
  CHECK(h.status == 409);
  CHECK(h.json_body()["error"].get<std::string>().find("running") != std::string::npos);
  deploying.join();
  CHECK(http_get(d.api_port(), "/upgrade").status == 405);

  const pid_t old = d.pid();
  kill(old, SIGUSR2);
  json s = d.wait_status([&](const json& st) { return st["daemon_pid"] != old; }, 20s);
  REQUIRE(s["daemon_pid"] != old);
  CHECK(d.follow_upgrade(s["daemon_pid"]) == 0);
  CHECK(d.status()["live_commit"] == v2);
  // The CLI says who serves now.
  auto r = d.cli({"upgrade"});
  CHECK(r.exit_code == 0);
  CHECK_MESSAGE(r.out.find("upgraded: the daemon is now pid") != std::string::npos, r.out << r.err);
  CHECK(d.follow_upgrade(d.status()["daemon_pid"]) == 0);
  CHECK(d.status()["healthy"] == true);
  check_clean_stop(d);
}

TEST_CASE("sd_notify: READY=1 once it serves, STATUS=, RELOADING/MAINPID/READY around an upgrade, STOPPING=1") {
  AppRepo repo;
  std::string v1 = repo.commit("v1");
  repo.write_config();
  NotifySocket systemd(repo.home() / "notify.sock");
  Launch how;
  how.extra_args = {};
  how.env["NOTIFY_SOCKET"] = (repo.home() / "notify.sock").string();
  Daemon d(repo, how);
  const std::string ready = systemd.wait_for("READY=1");
  CHECK_MESSAGE(ready.find("STATUS=nothing deployed yet") != std::string::npos, ready);

  REQUIRE(d.deploy(v1).status == 200);
  const std::string status = systemd.wait_for("STATUS=live: slot a " + v1.substr(0, 12) + " healthy");
  CHECK_MESSAGE(!status.empty(), "no STATUS= for the deploy; got " << systemd.messages().size() << " messages");
  // The app does not get systemd's socket.
  const int app = d.status()["live_pid"];
  CHECK(read_file(fmt::format("/proc/{}/environ", app)).find("NOTIFY_SOCKET") == std::string::npos);

  Http h = upgrade(d);
  REQUIRE(h.status == 200);
  CHECK(!systemd.wait_for("RELOADING=1").empty());
  const std::string handed = systemd.wait_for(fmt::format("MAINPID={}", d.pid()));
  CHECK_MESSAGE(handed.find("READY=1") != std::string::npos, handed);

  d.stop();
  CHECK(!systemd.wait_for("STOPPING=1").empty());
}

TEST_CASE("socket activation: systemd-socket-activate passes public and api; bad names are refused") {
  if (!fs::exists("/usr/bin/systemd-socket-activate")) {
    MESSAGE("systemd-socket-activate is not installed (scripts/setup.sh installs systemd)");
    CHECK(false);
    return;
  }
  AppRepo repo;
  std::string v1 = repo.commit("v1");
  json cfg = repo.write_config();
  const int pub = cfg["port"], api = cfg["api_port"];
  Launch how;
  how.extra_args = {};
  how.wrapper = {"/usr/bin/systemd-socket-activate", "-l", fmt::format("127.0.0.1:{}", pub), "-l",
                 fmt::format("127.0.0.1:{}", api), "--fdname=public:api",
                 // It passes on only the variables named.
                 "-E", "SPEC_TAG", "-E", "TESTAPP", "-E", "PATH", "-E", "ASAN_OPTIONS", "-E", "UBSAN_OPTIONS"};
  {
    Daemon d(repo, how);
    CHECK(d.log().find("on passed sockets") != std::string::npos);
    // Nothing live yet: the passed public socket answers 503 instead of queueing.
    CHECK(http_get(pub, "/", 5s).status == 503);
    Http h = d.deploy(v1);
    REQUIRE_MESSAGE(h.status == 200, h.body << d.log());
    CHECK(http_get(pub, "/").body.find("v1") != std::string::npos);
    check_clean_stop(d);
  }
  // systemd-socket-activate execs the daemon at the first connection, as systemd would.
  auto activated = [&](int port, const std::string& names) {
    std::atomic<bool> done{false};
    std::thread poke([&] {
      for (int i = 0; i < 100 && !done; ++i) {
        port_open(port);
        std::this_thread::sleep_for(50ms);
      }
    });
    auto r = run({"/usr/bin/systemd-socket-activate", "-l", fmt::format("127.0.0.1:{}", port),
                  "--fdname=" + names, "--", slot_machine_bin(), "start", "--config",
                  repo.config_path().string(), "--repo", repo.dir().string(), "--data",
                  repo.data_dir().string()},
                 repo.home(), {}, 15s);
    done = true;
    poke.join();
    return r;
  };
  auto r = activated(api, "web");
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.err.find("unknown socket name \"web\" in LISTEN_FDNAMES; expected public, api or internal") !=
                    std::string::npos, r.err);
  r = activated(free_port(), "api");
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.err.find("but the config's api_port is") != std::string::npos, r.err);
}

TEST_CASE("socket activation: SIGKILL and start again on held sockets refuses no connection; the app is adopted") {
  AppRepo repo;
  std::string v1 = repo.commit("v1");
  json cfg = repo.write_config({{"internal_port", free_port()}});
  HeldSocket pub(cfg["port"]), api(cfg["api_port"]), internal(cfg["internal_port"]);
  Launch how;
  how.extra_args = {};
  how.sockets = {{"public", pub.fd}, {"api", api.fd}, {"internal", internal.fd}};
  Daemon d(repo, how);
  REQUIRE(d.deploy(v1).status == 200);
  const int app = d.status()["live_pid"];

  Load load(d.public_port(), 4, false);
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(300ms);
    CHECK(d.stop(SIGKILL) == 128 + SIGKILL);
    std::this_thread::sleep_for(100ms);  // down for a moment: connections wait in the queue
    d.restart();
  }
  std::this_thread::sleep_for(300ms);
  load.finish();
  CHECK_MESSAGE(load.refused() == 0, load.refused() << " connections refused; first failure "
                                                    << load.first_failure());
  // Only requests in flight at each kill may fail.
  CHECK_MESSAGE(load.failed() <= 3 * 4, load.failed() << " failed; first " << load.first_failure());
  CHECK(load.ok() > 100);
  const json s = d.status();
  CHECK(s["live_pid"] == app);
  CHECK(s["healthy"] == true);
  CHECK(http_get(d.internal_port(), "/healthz").status == 200);  // through the held internal socket
  check_clean_stop(d);
}

TEST_CASE("systemd: writes NAME.service and NAME.socket that systemd-analyze verify accepts; never overwrites") {
  AppRepo repo;
  json cfg = repo.write_config({{"internal_port", free_port()}});
  const fs::path out = repo.home() / "units";
  fs::create_directories(out);
  auto r = run({slot_machine_bin(), "systemd", "--config", repo.config_path().string(), "--repo",
                repo.dir().string(), "--out", out.string(), "--name", "slot-machine-shop"},
               repo.home());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const fs::path service = out / "slot-machine-shop.service", socket = out / "slot-machine-shop.socket";
  CHECK(r.out == service.string() + "\n" + socket.string() + "\n");
  const std::string s = read_file(service), k = read_file(socket);
  CHECK(s.find("Type=notify") != std::string::npos);
  CHECK(s.find("ExecStart=" + slot_machine_bin() + " start --config " + repo.config_path().string()) != std::string::npos);
  CHECK(s.find(fmt::format("ExecReload={} upgrade --api-port {}", slot_machine_bin(), cfg["api_port"].get<int>())) !=
        std::string::npos);
  CHECK(s.find("KillMode=mixed") != std::string::npos);
  CHECK(k.find(fmt::format("ListenStream=127.0.0.1:{}", cfg["api_port"].get<int>())) != std::string::npos);
  CHECK(k.find(fmt::format("ListenStream=0.0.0.0:{}", cfg["port"].get<int>())) != std::string::npos);
  CHECK(k.find(fmt::format("ListenStream=127.0.0.1:{}", cfg["internal_port"].get<int>())) != std::string::npos);
  auto v = run({"/usr/bin/systemd-analyze", "verify", service.string(), socket.string()}, repo.home());
  CHECK_MESSAGE(v.exit_code == 0, v.out << v.err);

  // Never overwrites without --force; the file is untouched.
  std::ofstream(service) << "mine";
  r = run({slot_machine_bin(), "systemd", "--config", repo.config_path().string(), "--out", out.string(),
           "--name", "slot-machine-shop"}, repo.home());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find(service.string() + " exists; pass --force") != std::string::npos);
  CHECK(read_file(service) == "mine");
  r = run({slot_machine_bin(), "systemd", "--config", repo.config_path().string(), "--out", out.string(),
           "--name", "slot-machine-shop", "--force"}, repo.home());
  CHECK(r.exit_code == 0);
  CHECK(read_file(service).find("Type=notify") != std::string::npos);

  // Bad input: an invalid config, a bad name, a directory that cannot be written.
  std::ofstream(repo.home() / "bad.json") << "{\"port\": 70000, \"start_command\": \"x\"}";
  r = run({slot_machine_bin(), "systemd", "--config", (repo.home() / "bad.json").string(), "--out", out.string()},
          repo.home());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("\"port\" must be 1-65535") != std::string::npos);
  r = run({slot_machine_bin(), "systemd", "--config", repo.config_path().string(), "--out", out.string(),
           "--name", "a/b"}, repo.home());
  CHECK(r.exit_code == 2);
  r = run({slot_machine_bin(), "systemd", "--config", repo.config_path().string(), "--out",
           (repo.home() / "missing" / "dir").string()}, repo.home());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("cannot write") != std::string::npos);
}
