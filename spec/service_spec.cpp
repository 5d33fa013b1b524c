// Contract §7: running it as a service — sd_notify, socket activation
// (systemd-socket-activate and a test-owned holder of the sockets), the units
// `slot-machine systemd` writes. Upgrades: upgrade_spec.cpp.

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
#include "service_support.h"

using namespace spec;

namespace {

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
  // A running operation's stages and an exit of the live app reach STATUS= as they happen.
  const std::string v2 = repo.commit("v2");
  REQUIRE(d.deploy(v2).status == 200);
  CHECK(!systemd.wait_for("(deploy at checkout)").empty());
  CHECK(!systemd.wait_for("(deploy at health)").empty());
  CHECK(!systemd.wait_for("STATUS=live: slot b " + v2.substr(0, 12) + " healthy").empty());
  const int app2 = d.status()["live_pid"];
  ::kill(app2, SIGKILL);
  CHECK(!systemd.wait_for("STATUS=live: slot b " + v2.substr(0, 12) + " NOT HEALTHY").empty());
  REQUIRE(d.deploy(v1).status == 200);

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
    std::jthread poke([&] {
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
  CHECK_MESSAGE(r.err.find("unknown socket name \"web\" in LISTEN_FDNAMES; expected public, api, internal or https") !=
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
