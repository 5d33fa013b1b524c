// Contract §10, crash restart ("restart": "on-failure"). (Standby, auto-rollback and
// shared directories are not built yet.)

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
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  repo.write_config({{"restart", "on-failure"}, {"start_command", kCrashLoopStart}, {"health_timeout_ms", 2000}});
  Daemon d(repo);
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
  check_clean_stop(d);
}
