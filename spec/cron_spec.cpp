// Contract §16 scheduled jobs: "cron" entries run in the live slot at their times, one
// run of a job at a time, journalled with exit code and duration, output in their log.

#include <doctest/doctest.h>

#include <thread>

#include "harness.h"

using namespace spec;

namespace {
std::vector<json> journal_of(Daemon& d, const std::string& job) {
  std::vector<json> out;
  const json history = http_get(d.api_port(), "/history?limit=100").json_body();
  for (const auto& e : history["entries"])
    if (e["action"] == "cron" && e["job"] == job) out.push_back(e);
  return out;
}
}  // namespace

TEST_CASE("cron: jobs run in the live slot at their times, never two runs of one at once, journalled with "
          "exit code and duration") {
  TempDir shared;
  const std::string lock = (shared.path / "lock").string();
  // "slow" takes 1.5 s and runs every second: every other time is skipped, never overlapped
  // (a second run at once would find the lock taken and exit 9).
  const json cron = json::array(
      {{{"name", "slow"},
        {"schedule", "@every 1s"},
        {"command", "mkdir " + lock + " || exit 9; echo tick $SLOT_MACHINE_COMMIT in $PWD; sleep 1.5; rmdir " + lock}},
       {{"name", "fails"}, {"schedule", "@every 1s"}, {"command", "echo oops >&2; exit 3"}}});
  Site site({{"vA"}}, {{"cron", cron}}, kProxyMode);
  Daemon& d = site.d;
  // Nothing live yet: a run is skipped and says why.
  std::this_thread::sleep_for(1300ms);
  CHECK(journal_of(d, "slow").empty());
  CHECK(read_file(d.data_dir() / "cron" / "slow.log").find("not run: no version is live") != std::string::npos);

  REQUIRE(d.deploy(site.commits[0]).status == 200);
  std::vector<json> slow;
  for (int i = 0; i < 100 && slow.size() < 2; ++i) {
    std::this_thread::sleep_for(100ms);
    slow = journal_of(d, "slow");
  }
  REQUIRE(slow.size() >= 2);
  for (const auto& e : slow) {
    CHECK(e["result"] == "ok");
    CHECK(e["exit_code"] == 0);
    CHECK(e["commit"] == site.commits[0]);
    CHECK(e["duration_ms"].get<long long>() >= 1400);
  }
  const auto fails = journal_of(d, "fails");
  REQUIRE(!fails.empty());
  CHECK(fails[0]["result"] == "failed");
  CHECK(fails[0]["exit_code"] == 3);
  CHECK(fails[0]["detail"] == "exited with status 3");

  const auto logs = d.cli({"logs", "--cron", "slow", "-n", "200"});
  CHECK(logs.exit_code == 0);
  CHECK_MESSAGE(logs.out.find("tick " + site.commits[0] + " in " + (d.data_dir() / "slot-").string()) !=
                    std::string::npos,
                logs.out);
  CHECK(logs.out.find("skipped: the one before is still running") != std::string::npos);
  CHECK(d.cli({"logs", "--cron", "fails"}).out.find("oops") != std::string::npos);
  const auto unknown = d.cli({"logs", "--cron", "nope"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.err.find("there is no cron job \"nope\"; this app's jobs: slow, fails") != std::string::npos);
  const auto metrics = http_get(d.api_port(), "/metrics").body;
  CHECK(metrics.find("slot_machine_cron_runs_total{result=\"failed\"}") != std::string::npos);
  // The daemon stops: a run still going is stopped too (check_clean_stop: nothing left).
}

TEST_CASE("cron: a bad schedule is refused at start naming the entry and field") {
  AppRepo repo;
  repo.commit("vA");
  auto r = start_refused(repo, {{"cron", json::array({{{"name", "r"}, {"schedule", "0 6 * * * *"}, {"command", "x"}}})}});
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.err.find("\"cron\" entry \"r\" schedule: \"0 6 * * * *\" has 6 fields") != std::string::npos, r.err);
  r = start_refused(repo, {{"cron", json::array({{{"name", "r"}, {"schedule", "70 * * * *"}, {"command", "x"}}})}});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("minute field \"70\": 70 is out of range 0-59") != std::string::npos);
}
