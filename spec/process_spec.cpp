// Contract §4 processes: crash detection, drain, shutdown (scenarios 7, 8, 17).

#include <doctest/doctest.h>
#include <signal.h>

#include <thread>

#include "harness.h"

using namespace spec;

TEST_CASE("7: crashing the live app makes status unhealthy within a second") {
  Site site({{"vA"}});
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  CHECK(d.status()["healthy"] == true);
  CHECK(http_post(d.internal_port(), "/control/crash", "").status == 200);
  auto start = std::chrono::steady_clock::now();
  auto s = d.wait_status([](const json& s) { return s["healthy"] == false; }, 3s);
  CHECK(s["healthy"] == false);
  CHECK(std::chrono::steady_clock::now() - start < 1s);
  CHECK(s["live_commit"] == a);  // still the live deploy, honestly reported as down
}

TEST_CASE("an app whose health endpoint turns 503 is reported unhealthy") {
  Site site({{"vA"}});
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  http_post(d.internal_port(), "/control/unhealthy", "");
  CHECK(d.wait_status([](const json& s) { return s["healthy"] == false; }, 4s)["healthy"] == false);
  http_post(d.internal_port(), "/control/healthy", "");
  CHECK(d.wait_status([](const json& s) { return s["healthy"] == true; }, 4s)["healthy"] == true);
}

TEST_CASE("8: an app ignoring SIGTERM is SIGKILLed after drain_timeout_ms; the deploy succeeds") {
  Site site({{"vA", "--spawn-orphan"}, {"vB"}}, {{"drain_timeout_ms", 600}});
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1];
  REQUIRE(d.deploy(a).status == 200);
  auto who = http_get(d.internal_port(), "/whoami").json_body();
  pid_t old_pid = who["pid"];
  CHECK(http_post(d.internal_port(), "/control/hang", "").status == 200);
  auto start = std::chrono::steady_clock::now();
  auto r = d.deploy(b);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(took >= 600ms);
  CHECK(kill(old_pid, 0) != 0);  // the SIGTERM-ignoring app is gone
  // Nothing of slot a survives, not even its setsid'd grandchild; only daemon + new app.
  CHECK(tagged_processes(d.tag()).size() == 2);
  auto now = http_get(d.internal_port(), "/whoami").json_body();
  CHECK(now["slot"] == "b");
  CHECK(now["version"] == "vB");
  CHECK(d.log().find("SIGKILLed after drain_timeout_ms=600") != std::string::npos);
}

TEST_CASE("17: SIGTERM to the daemon drains the apps and exits 0 with no orphans") {
  Site site({{"vA"}, {"vB"}});
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1];
  REQUIRE(d.deploy(a).status == 200);
  REQUIRE(d.deploy(b).status == 200);
  CHECK(tagged_processes(d.tag()).size() == 2);
  check_clean_stop(d);
  CHECK_FALSE(port_open(d.public_port()));
  CHECK_FALSE(port_open(d.api_port()));
}

TEST_CASE("SIGINT and SIGHUP (terminal closed) stop the daemon the same way") {
  for (int sig : {SIGINT, SIGHUP}) {
    AppRepo repo;
    std::string a = repo.commit("vA");
    repo.write_config();
    Daemon d(repo);
    REQUIRE(d.deploy(a).status == 200);
    CHECK_MESSAGE(d.stop(sig) == 0, "signal " << sig);
    CHECK_MESSAGE(tagged_processes(d.tag()).empty(), "signal " << sig);
  }
}

TEST_CASE("setsid'd and double-forked children die at shutdown, even ignoring SIGTERM") {
  Site site({{"vA", "--spawn-orphan --ignore-sigterm"}}, {{"drain_timeout_ms", 300},
                     {"start_command", "setsid -f sleep 3600; exec \"$TESTAPP\" $(cat flags)"}});
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  CHECK(tagged_processes(d.tag()).size() == 4);  // daemon, app, two escaped sleepers
}

TEST_CASE("SIGTERM during a slow deploy abandons it quickly and leaves nothing behind") {
  Site site({{"slow", "--boot-delay 30"}}, {{"health_timeout_ms", 60000}, {"setup_command", "true"}});
  Daemon& d = site.d;
  const std::string slow = site.commits[0];
  std::jthread t([&] { d.deploy(slow); });
  d.wait_status([](const json& s) { return s["stage"] == "health"; }, 5s);
  auto start = std::chrono::steady_clock::now();
  check_clean_stop(d);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  t.join();
}
