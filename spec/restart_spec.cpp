// Contract §12: control over running operations: restarting the live app in place.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "control_support.h"
#include "harness.h"

using namespace spec;

TEST_CASE("restart with nothing live is 400 \"nothing is live\"") {
  Site site({{"vA"}});
  Daemon& d = site.d;
  auto r = http_post(d.api_port(), "/restart", "");
  CHECK(r.status == 400);
  CHECK(r.json_body()["error"].get<std::string>().find("nothing is live") != std::string::npos);
  auto cli = d.cli({"restart"});
  CHECK(cli.exit_code == 1);
  CHECK(cli.err.find("nothing is live") != std::string::npos);
}

TEST_CASE("restart in proxy mode under load: no failed request, a new pid, the same commit, "
          "env_file re-read, journalled") {
  AppRepo repo;
  std::string a = repo.commit("vA");
  std::string b = repo.commit("vB");
  const fs::path env = repo.home() / "app.env";
  std::ofstream(env) << "GREETING=before\n";
  repo.write_config({{"env_file", env.string()}});
  Daemon d(repo, kProxyMode);
  REQUIRE(d.deploy(a).status == 200);
  REQUIRE(d.deploy(b).status == 200);
  const json before = d.status();
  std::ofstream(env) << "GREETING=after\n";

  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t)
    load.emplace_back([&] {
      while (!done) (http_get(d.public_port(), "/", 5s).status == 200 ? ok : failed)++;
    });
  std::this_thread::sleep_for(200ms);
  auto cli = d.cli({"restart"});
  std::this_thread::sleep_for(200ms);
  done = true;
  for (auto& t : load) t.join();
  CHECK_MESSAGE(cli.exit_code == 0, cli.err);
  CHECK(cli.out.find("restarted") != std::string::npos);
  CHECK(failed == 0);
  CHECK(ok > 50);

  const json after = d.status();
  CHECK(after["live_commit"] == b);
  CHECK(after["live_slot"] == before["live_slot"]);
  CHECK(after["previous_commit"] == a);
  CHECK(after["live_pid"] != before["live_pid"]);
  CHECK(after["healthy"] == true);
  CHECK(after["last_deploy_time"] == before["last_deploy_time"]);
  CHECK(http_get(d.internal_port(), "/env?key=GREETING").body == "after");
  auto e = last_journal_entry(d);
  CHECK(e["action"] == "restart");
  CHECK(e["reason"] == "requested");
  CHECK(e["result"] == "ok");
  CHECK(tagged_processes(d.tag()).size() == 2);  // the old process is gone
  check_clean_stop(d);
}

TEST_CASE("restart in direct mode: a new pid; a new process that fails is replaced by one "
          "started again") {
  AppRepo repo;
  std::string a = repo.commit("vA");
  // Every start bumps a counter outside the repository; the second start (the restart)
  // comes up unhealthy, the third (the one started again) is fine.
  const fs::path count = repo.home() / "starts";
  std::ofstream(count) << "0";
  const std::string c = "'" + count.string() + "'";
  repo.write_config({{"health_timeout_ms", 1500},
                     {"start_command", "n=$(cat " + c + "); echo $((n+1)) > " + c +
                                           "; if [ $n = 1 ]; then exec \"$TESTAPP\" --start-unhealthy; "
                                           "else exec \"$TESTAPP\" $(cat flags); fi"}});
  Daemon d(repo);
  REQUIRE(d.deploy(a).status == 200);
  const int first_pid = d.status()["live_pid"];
  auto r = http_post(d.api_port(), "/restart", "");
  CHECK(r.status == 500);
  CHECK(r.json_body()["stage"] == "health");
  CHECK(r.json_body()["error"].get<std::string>().find("was started again") != std::string::npos);
  auto s = d.wait_status([](const json& j) { return j["healthy"] == true; }, 5s);
  CHECK(s["live_commit"] == a);
  CHECK(s["live_pid"] != first_pid);
  CHECK(http_get(d.public_port(), "/").status == 200);
  CHECK(last_journal_entry(d)["result"] == "failed");

  r = http_post(d.api_port(), "/restart", "");  // the fourth start: healthy
  CHECK(r.status == 200);
  CHECK(r.json_body()["commit"] == a);
  CHECK(d.status()["live_pid"] != s["live_pid"]);
  CHECK(http_get(d.public_port(), "/").status == 200);
  check_clean_stop(d);
}
