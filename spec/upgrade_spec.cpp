// Contract §7: upgrading the daemon without downtime (upgrade, POST /upgrade, SIGUSR2).

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

TEST_CASE("upgrade: a new daemon takes the sockets and adopts the app (same pid), under load") {
  Site site({{"v1"}}, json::object(), kProxyMode);
  AppRepo& repo = site.repo;
  Daemon& d = site.d;
  const std::string v1 = site.commits[0];
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
  Site site({{"v1"}, {"v2"}}, {{"setup_command", "sleep 1"}}, kProxyMode);
  Daemon& d = site.d;
  const std::string v1 = site.commits[0], v2 = site.commits[1];
  REQUIRE(d.deploy(v1).status == 200);
  std::jthread deploying([&] { CHECK(d.deploy(v2).status == 200); });
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
}

