// Contract §10: crash restart ("restart": "on-failure") and shared directories
// ("shared_dirs"). Standby and auto-rollback: standby_spec.cpp.

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "harness.h"

using namespace spec;

namespace {
json history(Daemon& d, int n) {
  return http_get(d.api_port(), fmt::format("/history?limit={}", n)).json_body()["entries"];
}

/// The start command: exits 1 at once while the slot holds a `crashloop` file.
const char* kCrashLoopStart =
    "if [ -e crashloop ]; then echo crashing on purpose; exit 1; fi; exec \"$TESTAPP\" $(cat flags)";
}  // namespace

TEST_CASE("restart on-failure: a SIGKILLed live app is started again in its slot, journalled "
          "restart/crashed, shown in status; both modes") {
  for (const bool proxy : {false, true}) {
    CAPTURE(proxy);
    AppRepo repo;
    const std::string v1 = repo.commit("v1");
    repo.write_config({{"restart", "on-failure"}});
    Daemon d(repo, proxy ? kProxyMode : std::vector<std::string>{"--no-proxy"});
    REQUIRE(d.deploy(v1).status == 200);
    const int pid = d.status()["live_pid"];
    ::kill(pid, SIGKILL);
    // The count goes up once the restart is journalled.
    auto s = d.wait_status([&](const json& j) { return j["crash_restarts"] == 1; }, 6s);
    CHECK(s["healthy"] == true);
    CHECK(s["live_pid"] != pid);
    CHECK(s["live_commit"] == v1);
    CHECK(s["live_slot"] == "a");
    CHECK(s["crash_restarts"] == 1);
    auto e = history(d, 1)[0];
    CHECK(e["action"] == "restart");
    CHECK(e["reason"] == "crashed");
    CHECK(e["result"] == "ok");
    CHECK(http_get(d.public_port(), "/").body.find("hello from v1") != std::string::npos);
    auto shown = d.cli({"status"});
    CHECK(shown.out.find("restarted:   1 time(s) after the app crashed") != std::string::npos);
    // A crash shortly after stays handled (the backoff grows to 2 s).
    const int pid2 = s["live_pid"];
    CHECK(http_post(d.internal_port(), "/control/crash", "").status == 200);
    s = d.wait_status([&](const json& j) { return j["crash_restarts"] == 2; }, 8s);
    CHECK(s["crash_restarts"] == 2);
    CHECK(s["healthy"] == true);
    CHECK(s["live_pid"] != pid2);
    check_clean_stop(d);
  }
}

TEST_CASE("restart on-failure: an app that keeps exiting is retried with growing waits; a "
          "deploy ends the retries") {
  Site site({{"v1"}}, {{"restart", "on-failure"}, {"start_command", kCrashLoopStart}, {"health_timeout_ms", 2000}});
  AppRepo& repo = site.repo;
  Daemon& d = site.d;
  const std::string v1 = site.commits[0];
  REQUIRE(d.deploy(v1).status == 200);
  std::ofstream(repo.data_dir() / "slot-a" / "crashloop") << "1\n";
  CHECK(http_post(d.internal_port(), "/control/crash", "").status == 200);
  // Attempts about 1 s, then 2 s, then 4 s apart: note when each failed one is journalled.
  using Clock = std::chrono::steady_clock;
  const auto began = Clock::now();
  std::vector<Clock::time_point> seen;
  while (seen.size() < 3 && Clock::now() - began < 15s) {
    size_t failed = 0;
    for (const auto& e : history(d, 10))
      if (e["action"] == "restart" && e["reason"] == "crashed" && e["result"] == "failed") ++failed;
    while (seen.size() < failed) seen.push_back(Clock::now());
    std::this_thread::sleep_for(50ms);
  }
  REQUIRE(seen.size() == 3);
  CHECK(d.status()["healthy"] == false);
  auto ms = [](Clock::duration x) { return std::chrono::duration_cast<std::chrono::milliseconds>(x).count(); };
  const long long gap1 = ms(seen[1] - seen[0]), gap2 = ms(seen[2] - seen[1]);
  CHECK_MESSAGE(gap1 >= 1800, gap1);
  CHECK_MESSAGE(gap2 >= 3800, gap2);
  // A deploy of another version (to slot b) ends the retries for the crashed one: the
  // next attempt (8 s after the third) finds nothing to do and journals nothing.
  const std::string v2 = repo.commit("v2");
  REQUIRE(d.deploy(v2).status == 200);
  const size_t entries = history(d, 100).size();
  std::this_thread::sleep_until(seen[2] + 9s);
  CHECK(history(d, 100).size() == entries);
  CHECK(d.status()["live_commit"] == v2);
  CHECK(d.status()["healthy"] == true);
}

TEST_CASE("shared_dirs: linked into every slot before setup, seeded from the first checkout, kept "
          "across deploys and rollbacks; a tracked file there fails the deploy, naming it") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1", "", {{"data/seed.txt", "seed from v1\n"}});
  // The setup writes into the shared directory, as an app would at run time.
  repo.write_config({{"shared_dirs", {"data", "var/uploads"}},
                     {"setup_command", "echo \"$SLOT_MACHINE_COMMIT\" >> data/deploys.log && ls var/uploads"}});
  Daemon d(repo);
  const fs::path shared = repo.data_dir() / "shared";
  REQUIRE(d.deploy(v1).status == 200);
  CHECK(fs::is_symlink(repo.data_dir() / "slot-a" / "data"));
  CHECK(read_file(shared / "data" / "seed.txt") == "seed from v1\n");
  CHECK(fs::is_directory(shared / "var" / "uploads"));

  const std::string v2 = repo.commit("v2", "", {{"data/seed.txt", "seed from v2\n"}});
  REQUIRE(d.deploy(v2).status == 200);
  CHECK(fs::is_symlink(repo.data_dir() / "slot-b" / "data"));
  CHECK(read_file(shared / "data" / "seed.txt") == "seed from v1\n");  // seeded once: the shared copy wins
  CHECK(read_file(shared / "data" / "deploys.log") == v1 + "\n" + v2 + "\n");
  std::ofstream(shared / "var" / "uploads" / "photo.jpg") << "jpeg";

  REQUIRE(d.rollback().status == 200);
  CHECK(read_file(repo.data_dir() / "slot-a" / "var" / "uploads" / "photo.jpg") == "jpeg");
  // A deploy into slot a again (checkout over the link) keeps everything.
  const std::string v3 = repo.commit("v3");
  REQUIRE(d.deploy(v3).status == 200);
  CHECK(d.status()["live_slot"] == "b");
  const std::string v4 = repo.commit("v4");
  REQUIRE(d.deploy(v4).status == 200);
  CHECK(d.status()["live_slot"] == "a");
  CHECK(read_file(shared / "var" / "uploads" / "photo.jpg") == "jpeg");
  CHECK(read_file(shared / "data" / "deploys.log") == v1 + "\n" + v2 + "\n" + v3 + "\n" + v4 + "\n");

  // A commit where `data` is a file: the deploy fails at checkout naming it; nothing lost.
  sh("git rm -rq data && echo not-a-dir > data && git add data && git commit -qm file", repo.dir());
  const std::string bad = sh("git rev-parse HEAD", repo.dir()).substr(0, 40);
  Http r = d.deploy(bad);
  CHECK(r.status == 500);
  CHECK(r.json_body()["stage"] == "checkout");
  CHECK_MESSAGE(r.json_body()["error"].get<std::string>().find("\"data\" is a file in this commit") != std::string::npos,
                r.body);
  CHECK(d.status()["live_commit"] == v4);
  CHECK(read_file(shared / "var" / "uploads" / "photo.jpg") == "jpeg");
  check_clean_stop(d);
}

TEST_CASE("shared_dirs that escape the slot, repeat or are empty are config errors (exit 2)") {
  AppRepo repo;
  repo.commit("v1");
  for (const auto& [dirs, says] : std::vector<std::pair<json, std::string>>{
           {json::array({"../etc"}), "\"shared_dirs\" entry \"../etc\" must not contain"},
           {json::array({"/var/lib/x"}), "is absolute"},
           {json::array({""}), "is empty"},
           {json::array({"data", "data"}), "is listed twice"}}) {
    repo.write_config({{"shared_dirs", dirs}});
    auto r = run({slot_machine_bin(), "start", "--config", repo.config_path().string(), "--repo",
                  repo.dir().string(), "--data", repo.data_dir().string(), "--no-proxy"},
                 repo.home(), {}, 10s);
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(r.err.find(says) != std::string::npos, r.err);
  }
}
