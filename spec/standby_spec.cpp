// Contract §10: warm and frozen standby (proxy mode) and auto-rollback.

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "harness.h"
#include "service_support.h"

using namespace spec;

namespace {

json standby_history(Daemon& d, int n) {
  return http_get(d.api_port(), fmt::format("/history?limit={}", n)).json_body()["entries"];
}

bool alive(int pid) { return pid > 0 && ::kill(pid, 0) == 0; }

/// The process state letter from /proc/<pid>/stat ('T' when stopped), or '?' when gone.
char proc_state(int pid) {
  const std::string stat = read_file(fmt::format("/proc/{}/stat", pid));
  const auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
}

}  // namespace

TEST_CASE("standby warm: the replaced app stays up unrouted; rollback only switches (same pid, "
          "0 failed requests under load); a deploy that needs its slot drains it") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1"), v2 = repo.commit("v2"), v3 = repo.commit("v3");
  repo.write_config({{"standby", "warm"}});
  Daemon d(repo, kProxyMode);
  REQUIRE(d.deploy(v1).status == 200);
  const int pid1 = d.status()["live_pid"];
  REQUIRE(d.deploy(v2).status == 200);
  json s = d.status();
  const int pid2 = s["live_pid"];
  CHECK(s["standby"] == "warm");
  CHECK(s["previous_pid"] == pid1);
  CHECK_FALSE(s["standby_until"].get<std::string>().empty());
  CHECK(alive(pid1));
  CHECK(http_get(d.public_port(), "/").body.find("hello from v2") != std::string::npos);
  CHECK(d.cli({"status"}).out.find(fmt::format("warm standby (pid {})", pid1)) != std::string::npos);

  {
    Load load(d.public_port(), 4, true);
    std::this_thread::sleep_for(300ms);
    const auto began = std::chrono::steady_clock::now();
    Http rb = d.rollback();
    const auto took = std::chrono::steady_clock::now() - began;
    REQUIRE_MESSAGE(rb.status == 200, rb.body);
    std::this_thread::sleep_for(300ms);
    load.finish();
    CHECK_MESSAGE(load.failed() == 0, load.first_failure());
    CHECK(load.ok() > 0);
    MESSAGE("rollback to a warm standby answered in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  }
  s = d.status();
  CHECK(s["live_pid"] == pid1);  // nothing started
  CHECK(s["live_commit"] == v1);
  CHECK(s["standby"] == "warm");  // the version rolled back from waits in turn
  CHECK(s["previous_pid"] == pid2);
  CHECK(http_get(d.public_port(), "/").body.find("hello from v1") != std::string::npos);

  // v3 goes to slot b, where v2 waits: drained first; v1 becomes the standby.
  REQUIRE(d.deploy(v3).status == 200);
  s = d.status();
  CHECK_FALSE(alive(pid2));
  CHECK(s["previous_pid"] == pid1);
  CHECK(alive(pid1));
  check_clean_stop(d);
  CHECK_FALSE(alive(pid1));  // a stopped daemon leaves no standby behind
}

TEST_CASE("standby frozen: SIGSTOPped while waiting, resumed by a rollback; stopped when "
          "standby_ttl_s is over") {
  Site site({{"v1"}, {"v2"}}, {{"standby", "frozen"}, {"standby_ttl_s", 10}}, kProxyMode);
  Daemon& d = site.d;
  const std::string v1 = site.commits[0], v2 = site.commits[1];
  REQUIRE(d.deploy(v1).status == 200);
  const int pid1 = d.status()["live_pid"];
  REQUIRE(d.deploy(v2).status == 200);
  const int pid2 = d.status()["live_pid"];
  CHECK(d.status()["standby"] == "frozen");
  CHECK(proc_state(pid1) == 'T');
  REQUIRE(d.rollback().status == 200);
  json s = d.status();
  CHECK(s["live_pid"] == pid1);
  CHECK(proc_state(pid1) != 'T');
  CHECK(proc_state(pid2) == 'T');
  CHECK(http_get(d.public_port(), "/").body.find("hello from v1") != std::string::npos);

  // Ten seconds later the standby is stopped; a rollback then starts v2 afresh.
  s = d.wait_status([](const json& j) { return j["standby"] == ""; }, 15s);
  CHECK(s["standby"] == "");
  CHECK(s["previous_pid"] == 0);
  for (int i = 0; i < 100 && alive(pid2); ++i) std::this_thread::sleep_for(50ms);
  CHECK_FALSE(alive(pid2));
  REQUIRE(d.rollback().status == 200);
  s = d.status();
  CHECK(s["live_commit"] == v2);
  CHECK(s["live_pid"] != pid2);
}

TEST_CASE("standby: a daemon killed with a standby is followed by one that adopts the live app "
          "and the standby") {
  Site site({{"v1"}, {"v2"}}, {{"standby", "frozen"}}, kProxyMode);
  Daemon& d = site.d;
  const std::string v1 = site.commits[0], v2 = site.commits[1];
  REQUIRE(d.deploy(v1).status == 200);
  const int pid1 = d.status()["live_pid"];
  REQUIRE(d.deploy(v2).status == 200);
  const int pid2 = d.status()["live_pid"];
  d.stop(SIGKILL);
  d.restart();
  json s = d.status();
  CHECK(s["live_pid"] == pid2);
  CHECK(s["standby"] == "frozen");
  CHECK(s["previous_pid"] == pid1);
  CHECK(proc_state(pid1) == 'T');
  REQUIRE(d.rollback().status == 200);
  CHECK(d.status()["live_pid"] == pid1);
  CHECK(http_get(d.public_port(), "/").body.find("hello from v1") != std::string::npos);
}

TEST_CASE("auto-rollback: a new app that exits within auto_rollback_s is rolled back to the "
          "standby (crash restart does not get in first); journalled, shown; never a loop") {
  Site site({{"v1"}, {"v2"}}, {{"standby", "warm"}, {"auto_rollback_s", 30}, {"restart", "on-failure"}}, kProxyMode);
  Daemon& d = site.d;
  const std::string v1 = site.commits[0], v2 = site.commits[1];
  REQUIRE(d.deploy(v1).status == 200);
  const int pid1 = d.status()["live_pid"];
  REQUIRE(d.deploy(v2).status == 200);
  CHECK(http_post(d.status()["live_internal_port"], "/control/crash", "").status == 200);
  json s = d.wait_status([](const json& j) { return j["last_auto_rollback"].is_object(); }, 10s);
  REQUIRE(s["last_auto_rollback"].is_object());
  CHECK(s["last_auto_rollback"]["reason"].get<std::string>().find("exited with status 1") != std::string::npos);
  CHECK(s["live_commit"] == v1);
  CHECK(s["live_pid"] == pid1);  // the standby, instantly
  CHECK(s["healthy"] == true);
  CHECK(s["standby"] == "");     // the failing app is not kept
  CHECK(s["crash_restarts"] == 0);
  auto e = standby_history(d, 1)[0];
  CHECK(e["action"] == "auto-rollback");
  CHECK(e["result"] == "ok");
  CHECK(e["commit"] == v1);
  CHECK(e["reason"].get<std::string>().find("exited with status 1") != std::string::npos);
  CHECK(d.cli({"status"}).out.find("auto-rollback: ") != std::string::npos);
  CHECK(d.cli({"history"}).out.find("auto-rollback") != std::string::npos);

  // The version rolled back to crashing is not rolled back again (crash restart handles it).
  CHECK(http_post(d.status()["live_internal_port"], "/control/crash", "").status == 200);
  s = d.wait_status([](const json& j) { return j["crash_restarts"] == 1; }, 10s);
  CHECK(s["crash_restarts"] == 1);
  CHECK(s["live_commit"] == v1);
  auto entries = standby_history(d, 10);
  int autos = 0;
  for (const auto& h : entries) autos += h["action"] == "auto-rollback";
  CHECK(autos == 1);
}

TEST_CASE("auto-rollback without standby: three failed health probes in the window restart the "
          "previous version") {
  Site site({{"v1"}, {"v2"}}, {{"auto_rollback_s", 20}}, kProxyMode);
  Daemon& d = site.d;
  const std::string v1 = site.commits[0], v2 = site.commits[1];
  REQUIRE(d.deploy(v1).status == 200);
  const int pid1 = d.status()["live_pid"];
  REQUIRE(d.deploy(v2).status == 200);
  CHECK(http_post(d.status()["live_internal_port"], "/control/unhealthy", "").status == 200);
  json s = d.wait_status([](const json& j) { return j["last_auto_rollback"].is_object(); }, 10s);
  REQUIRE(s["last_auto_rollback"].is_object());
  CHECK(s["last_auto_rollback"]["reason"].get<std::string>().find("failed 3 health probes in a row") !=
        std::string::npos);
  CHECK(s["live_commit"] == v1);
  CHECK(s["live_pid"] != pid1);  // started again: there was no standby
  CHECK(s["healthy"] == true);
  CHECK(http_get(d.public_port(), "/").body.find("hello from v1") != std::string::npos);
}

TEST_CASE("standby and auto-rollback config: bad values exit 2 naming the field; standby needs "
          "proxy mode; a window longer than the standby's life is a warning") {
  AppRepo repo;
  repo.commit("v1");
  auto start = [&](const json& overrides, bool direct) { return start_refused(repo, overrides, direct); };
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"standby", "hot"}}, "\"standby\" must be \"off\", \"warm\" or \"frozen\", got \"hot\""},
      {{{"standby_ttl_s", 5}}, "\"standby_ttl_s\" must be 10-604800 seconds, got 5"},
      {{{"standby_ttl_s", "600"}}, "\"standby_ttl_s\" must be an integer"},
      {{{"auto_rollback_s", -1}}, "\"auto_rollback_s\" must be 0-86400 seconds (0 = off), got -1"},
  };
  for (const auto& [overrides, says] : cases) {
    auto r = start(overrides, false);
    CHECK_MESSAGE(r.exit_code == 2, overrides.dump() << r.err);
    CHECK_MESSAGE(r.err.find(says) != std::string::npos, r.err);
  }
  auto direct = start({{"standby", "warm"}}, true);
  CHECK(direct.exit_code == 2);
  CHECK(direct.err.find("\"standby\" needs proxy mode") != std::string::npos);

  repo.write_config({{"standby", "warm"}, {"standby_ttl_s", 60}, {"auto_rollback_s", 120}});
  Daemon d(repo, kProxyMode);
  CHECK(d.log().find("\"auto_rollback_s\" (120 s) is longer than \"standby_ttl_s\" (60 s)") != std::string::npos);
  check_clean_stop(d);
}
