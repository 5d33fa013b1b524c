// Durable state: a daemon that is killed and started again forgets nothing, adopts the
// running app, never duplicates a slot; the journal keeps the history.

#include <doctest/doctest.h>

#include <csignal>
#include <fstream>

#include "harness.h"

using namespace spec;

namespace {

int live_pid_of(Daemon& d) { return d.status()["live_pid"]; }

/// Kills the daemon with SIGKILL (its apps keep running) and starts it again.
void kill_and_restart(Daemon& d) {
  REQUIRE(d.stop(SIGKILL) == 128 + SIGKILL);
  d.restart();
}

void check_restart_keeps_everything(const std::vector<std::string>& mode) {
  Site site({{"vA"}, {"vB"}}, json::object(), mode);
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1];
  Http r = d.deploy(a);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  r = d.deploy(b);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const int pid = live_pid_of(d);
  const auto before = d.status();

  kill_and_restart(d);
  auto s = d.status();
  CHECK(s["live_slot"] == before["live_slot"]);
  CHECK(s["live_commit"] == b);
  CHECK(s["previous_commit"] == a);
  CHECK(s["healthy"] == true);
  CHECK(s["live_pid"] == pid);  // adopted, not restarted
  CHECK(s["last_deploy_time"] == before["last_deploy_time"]);
  CHECK(http_get(d.public_port(), "/").body.find("hello from vB") == 0);
  CHECK(tagged_processes(d.tag()).size() == 2);  // the new daemon and the one app
  CHECK(d.log().find("adopted the running app") != std::string::npos);

  // The adopted app is watched like any other: its crash is seen.
  REQUIRE(d.rollback().status == 200);  // drains the adopted app
  s = d.status();
  CHECK(s["live_commit"] == a);
  CHECK(s["previous_commit"] == b);
  CHECK(http_get(d.public_port(), "/").body.find("hello from vA") == 0);
  CHECK(tagged_processes(d.tag()).size() == 2);

  auto h = http_get(d.api_port(), "/history").json_body()["entries"];
  REQUIRE(h.size() == 4);
  CHECK(h[0]["action"] == "rollback");
  CHECK(h[1]["action"] == "adopt");
  CHECK(h[1]["commit"] == b);
}

}  // namespace

TEST_CASE("durable: SIGKILL the daemon (direct mode) and start it again: the app is adopted") {
  check_restart_keeps_everything({"--no-proxy"});
}

TEST_CASE("durable: SIGKILL the daemon (proxy mode) and start it again: the proxy resumes") {
  check_restart_keeps_everything({});
}

TEST_CASE("durable: state.json and the live/prev links follow every operation") {
  Site site({{"vA"}, {"vB"}});
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1];
  REQUIRE(d.deploy(a).status == 200);
  auto st = json::parse(read_file(d.data_dir() / "state.json"));
  CHECK(st["live"]["commit"] == a);
  CHECK(st["previous"].is_null());
  CHECK(fs::read_symlink(d.data_dir() / "live") == "slot-a");
  REQUIRE(d.deploy(b).status == 200);
  st = json::parse(read_file(d.data_dir() / "state.json"));
  CHECK(st["live"]["commit"] == b);
  CHECK(st["live"]["pgid"] == d.status()["live_pid"]);
  CHECK(st["previous"]["commit"] == a);
  CHECK(fs::read_symlink(d.data_dir() / "live") == "slot-b");
  CHECK(fs::read_symlink(d.data_dir() / "prev") == "slot-a");
}

TEST_CASE("durable: a clean stop and start brings the live app back on a new process") {
  Site site({{"vA"}});
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  const int pid = live_pid_of(d);
  REQUIRE(d.stop() == 0);
  CHECK_FALSE(port_open(d.public_port()));
  d.restart();
  auto s = d.status();
  CHECK(s["live_commit"] == a);
  CHECK(s["healthy"] == true);
  CHECK(s["live_pid"] != pid);
  CHECK(http_get(d.public_port(), "/").status == 200);
  auto h = http_get(d.api_port(), "/history").json_body()["entries"];
  REQUIRE(h.size() >= 1);
  CHECK(h[0]["action"] == "restart");
  CHECK(h[0]["result"] == "ok");
}

TEST_CASE("durable: SIGKILL during setup: the half-done slot is killed and not offered") {
  Site site({{"vA"}, {"vB"}, {"vC", "", {{"slow-setup", "1"}}}}, {{"setup_command", "if [ -f slow-setup ]; then sleep 30; fi"}});
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1], c = site.commits[2];
  REQUIRE(d.deploy(a).status == 200);
  REQUIRE(d.deploy(b).status == 200);  // live b in slot b, previous a in slot a
  const int pid = live_pid_of(d);
  std::jthread deployer([&] { d.deploy(c); });  // into slot a: previous a is gone now
  auto s = d.wait_status([](const json& s) { return s["stage"] == "setup"; }, 10s);
  CHECK(s["stage"] == "setup");
  // The stage is reported before the shell has started its sleep: wait for it.
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (tagged_processes(d.tag()).size() < 4 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(20ms);
  CHECK(tagged_processes(d.tag()).size() >= 4);  // daemon, app, sh, sleep
  kill_and_restart(d);
  deployer.join();
  s = d.status();
  CHECK(s["live_commit"] == b);
  CHECK(s["live_pid"] == pid);
  CHECK(s["previous_commit"] == "");  // slot a was half overwritten
  CHECK(s["operation"] == "");
  CHECK(tagged_processes(d.tag()).size() == 2);  // setup's sleep was killed
  CHECK(d.rollback().status == 400);
  REQUIRE(d.deploy(a).status == 200);  // and slot a is usable again
  CHECK(d.status()["previous_commit"] == b);
}

TEST_CASE("durable: a corrupt state file is a warning and a fresh start; nothing is deleted") {
  Site site({{"vA"}});
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  REQUIRE(d.stop() == 0);
  for (const std::string& bad : {std::string("{\"format\": 1, \"live\": {\"slot\""), std::string("\x01\x02garbage")}) {
    std::ofstream(d.data_dir() / "state.json", std::ios::trunc) << bad;
    d.restart();
    CHECK(d.log().find("state.json is unreadable") != std::string::npos);
    auto s = d.status();
    CHECK(s["live_slot"] == "");
    CHECK(fs::exists(d.data_dir() / "slot-a" / "VERSION"));  // the worktree is kept
    CHECK(tagged_processes(d.tag()).size() == 1);
    REQUIRE(d.stop() == 0);
  }
  d.restart();
  REQUIRE(d.deploy(a).status == 200);  // and deploying works again
}

TEST_CASE("history: every deploy, failure and rollback, newest first, over the API and the CLI") {
  // Time enough for the good versions on a loaded machine (300 ms was seen to fail one).
  Site site({{"vA"}, {"vB"}, {"bad", "--start-unhealthy"}}, {{"health_timeout_ms", 2000}});
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1], bad = site.commits[2];
  REQUIRE(d.deploy(a).status == 200);
  REQUIRE(d.deploy(b).status == 200);
  REQUIRE(d.rollback().status == 200);
  REQUIRE(d.deploy(bad).status == 500);
  CHECK(d.deploy("no-such-rev").status == 404);  // refused: not history

  auto h = http_get(d.api_port(), "/history").json_body()["entries"];
  REQUIRE(h.size() == 4);
  CHECK(h[0]["action"] == "deploy");
  CHECK(h[0]["result"] == "failed");
  CHECK(h[0]["stage"] == "health");
  CHECK(h[0]["error"].get<std::string>().find("deploy of") == 0);
  CHECK(h[1]["action"] == "rollback");
  CHECK(h[1]["commit"] == a);
  CHECK(h[2]["commit"] == b);
  CHECK(h[2]["previous_commit"] == a);
  CHECK(h[3]["commit"] == a);
  CHECK(h[3]["result"] == "ok");
  for (const auto& e : h) {
    CHECK(e["time"].get<std::string>().size() == 20);
    CHECK(e["duration_ms"].is_number());
  }
  CHECK(http_get(d.api_port(), "/history?limit=1").json_body()["entries"].size() == 1);
  CHECK(http_get(d.api_port(), "/history?limit=0").status == 400);
  CHECK(http_get(d.api_port(), "/history?limit=abc").status == 400);

  auto out = d.cli({"history", "-n", "2"});
  CHECK(out.exit_code == 0);
  CHECK(out.out.find("TIME") == 0);
  CHECK(out.out.find("rollback") != std::string::npos);
  CHECK(out.out.find("failed") != std::string::npos);
  CHECK(out.out.find(b.substr(0, 12)) == std::string::npos);  // only two entries
  CHECK(out.out.find("\n", out.out.find("\n", out.out.find("\n") + 1) + 1) == out.out.size() - 1);
  auto js = d.cli({"history", "--json"});
  CHECK(json::parse(js.out).size() == 4);
  CHECK(d.cli({"history", "-n", "0"}).exit_code == 2);

  // A torn last line (a crash mid-append) is skipped, and the next entry is whole.
  std::ofstream(d.data_dir() / "journal.ndjson", std::ios::app) << "{\"time\": \"2026";
  CHECK(http_get(d.api_port(), "/history").json_body()["entries"].size() == 4);
  REQUIRE(d.deploy(b).status == 200);
  h = http_get(d.api_port(), "/history").json_body()["entries"];
  REQUIRE(h.size() == 5);
  CHECK(h[0]["commit"] == b);
}
