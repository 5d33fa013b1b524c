// Contract §16 workers: processes beside the web one that always run the live version,
// exactly once, through deploys, rollbacks, restarts, failures, cancels, crashes of their
// own, daemon restarts and upgrades.

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "apps_support.h"
#include "control_support.h"
#include "harness.h"
#include "service_support.h"

using namespace spec;

namespace {

// The worker: says which version it runs, leaves a setsid'd child (which must go with
// it), and stays. `sleep 3601` is the worker itself, `sleep 3600` its escaped child.
const json kWorkers = {{"jobs", "echo \"jobs $SLOT_MACHINE_COMMIT in $PWD\"; setsid sleep 3600 & exec sleep 3601"}};

struct WorkerProcess {
  pid_t pid;
  std::string worker, commit, cmdline;
};

std::string environ_var(const std::string& environ, const std::string& name) {
  for (size_t at = 0; at < environ.size();) {
    const size_t end = environ.find('\0', at);
    const std::string entry = environ.substr(at, end - at);
    if (entry.rfind(name + "=", 0) == 0) return entry.substr(name.size() + 1);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return "";
}

/// The daemon's processes that belong to a worker (its own and its children's).
std::vector<WorkerProcess> worker_processes(const Daemon& d) {
  std::vector<WorkerProcess> out;
  for (pid_t pid : tagged_processes(d.tag())) {
    const std::string env = read_file(fmt::format("/proc/{}/environ", pid));
    const std::string worker = environ_var(env, "SLOT_MACHINE_WORKER");
    if (worker.empty()) continue;
    std::string cmd = read_file(fmt::format("/proc/{}/cmdline", pid));
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    out.push_back({pid, worker, environ_var(env, "SLOT_MACHINE_COMMIT"), cmd});
  }
  return out;
}

/// Exactly one version of "jobs" runs, `commit`'s: the worker (status's pid) and its
/// escaped child; nothing of any other version. Returns the worker's pid.
pid_t check_one_version(Daemon& d, const std::string& commit) {
  const json s = d.status();
  REQUIRE(s["workers"].size() == 1);
  const pid_t pid = s["workers"][0]["pid"];
  CHECK(s["workers"][0]["name"] == "jobs");
  CHECK(pid > 0);
  // The worker starts its escaped child a moment after it starts.
  auto procs = worker_processes(d);
  for (int i = 0; i < 100 && procs.size() < 2; ++i) {
    std::this_thread::sleep_for(20ms);
    procs = worker_processes(d);
  }
  CHECK_MESSAGE(procs.size() == 2, procs.size() << " worker processes");
  int leaders = 0;
  for (const auto& p : procs) {
    CHECK_MESSAGE(p.commit == commit, p.cmdline << " runs " << p.commit << ", not " << commit);
    CHECK(p.worker == "jobs");
    if (p.pid == pid) ++leaders;
  }
  CHECK(leaders == 1);
  return pid;
}

}  // namespace

TEST_CASE("workers: after deploy, rollback and restart the live version's run once; a failed deploy and a "
          "cancel leave them be; stop leaves none") {
  Site site({{"vA"}, {"vB"}, {"vC", "--start-unhealthy"}, {"vD", "", {{"hang", "1"}}}},
            {{"workers", kWorkers}, {"setup_command", kHangingSetup}, {"health_timeout_ms", 1500}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1], c = site.commits[2], hangs = site.commits[3];
  CHECK(d.status()["workers"].empty());  // nothing live: no worker
  REQUIRE(d.deploy(a).status == 200);
  const pid_t on_a = check_one_version(d, a);
  REQUIRE(d.deploy(b).status == 200);
  const pid_t on_b = check_one_version(d, b);
  CHECK(on_b != on_a);
  CHECK(kill(on_a, 0) != 0);
  REQUIRE(d.rollback().status == 200);
  const pid_t back = check_one_version(d, a);
  REQUIRE(http_post(d.api_port(), "/restart", "").status == 200);
  const pid_t restarted = check_one_version(d, a);
  CHECK(restarted != back);

  Http failed = d.deploy(c);
  CHECK(failed.status == 500);
  CHECK(check_one_version(d, a) == restarted);  // untouched: the failed version starts none

  std::jthread deploying([&] { d.deploy(hangs); });
  REQUIRE(wait_stage(d, "deploy", "setup"));
  CHECK(http_post(d.api_port(), "/cancel", "").status == 200);
  deploying.join();
  CHECK(check_one_version(d, a) == restarted);

  // The worker ran in the live slot's directory; its output is in its log.
  const auto logs = d.cli({"logs", "--worker", "jobs", "-n", "50"});
  CHECK(logs.exit_code == 0);
  CHECK_MESSAGE(logs.out.find("jobs " + a + " in " + (d.data_dir() / "slot-").string()) != std::string::npos,
                logs.out);
  CHECK(logs.out.find("stopped (another version's workers replaced them)") != std::string::npos);
  check_clean_stop(d);  // workers and their escaped children included
}

TEST_CASE("workers: one that exits is started again with backoff, journalled, counted; logs --worker and "
          "bad names") {
  Site site({{"vA"}}, {{"workers", {{"jobs", "echo run; sleep 0.2; exit 3"}, {"mail", "exec sleep 3600"}}}},
            kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  // Exits after 0.2 s, then 1 s, 2 s backoff: two restarts within ~4 s.
  const json s = d.wait_status(
      [](const json& s) {
        for (const auto& w : s["workers"])
          if (w["name"] == "jobs" && w["restarts"].get<int>() >= 2) return true;
        return false;
      },
      8s);
  json jobs, mail;
  for (const auto& w : s["workers"]) (w["name"] == "jobs" ? jobs : mail) = w;
  CHECK(jobs["restarts"].get<int>() >= 2);
  CHECK(jobs["last_exit"] == "exited with status 3");
  CHECK(mail["restarts"] == 0);  // the other worker is not disturbed
  CHECK(mail["pid"].get<int>() > 0);
  const auto h = http_get(d.api_port(), "/history?limit=5").json_body()["entries"];
  int restarts = 0;
  for (const auto& e : h)
    if (e["action"] == "worker-restart") {
      ++restarts;
      CHECK(e["worker"] == "jobs");
      CHECK(e["detail"] == "exited with status 3");
    }
  CHECK(restarts >= 2);
  const auto status = d.cli({"status"});
  CHECK_MESSAGE(status.out.find("worker:      mail") != std::string::npos, status.out);
  const auto metrics = http_get(d.api_port(), "/metrics").body;
  CHECK(metrics.find("slot_machine_worker_up{worker=\"mail\"} 1") != std::string::npos);
  CHECK(metrics.find("slot_machine_worker_restarts_total ") != std::string::npos);

  const auto logs = d.cli({"logs", "--worker", "jobs"});
  CHECK(logs.out.find("run\n") != std::string::npos);
  CHECK(logs.out.find("exited with status 3; started again in 1 s") != std::string::npos);
  auto bad = d.cli({"logs", "--worker", "nope"});
  CHECK(bad.exit_code == 1);
  CHECK_MESSAGE(bad.err.find("there is no worker \"nope\"; this app's workers: jobs, mail") != std::string::npos,
                bad.err);
  bad = d.cli({"logs", "--worker", "Bad Name"});
  CHECK(bad.exit_code != 0);
  CHECK(bad.err.find("a worker name is 1-32 of a-z, 0-9 and '-'") != std::string::npos);
  CHECK(http_get(d.api_port(), "/logs?worker=jobs&slot=live").status == 400);
}

TEST_CASE("workers: a daemon killed and started again, and an upgrade, adopt them (same pids)") {
  Site site({{"vA"}}, {{"workers", kWorkers}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  const pid_t pid = check_one_version(d, a);
  REQUIRE(d.stop(SIGKILL) == 128 + SIGKILL);
  d.restart();
  CHECK(check_one_version(d, a) == pid);
  CHECK(d.log().find("adopted worker jobs, pid " + std::to_string(pid)) != std::string::npos);
  Http h = upgrade(d);
  REQUIRE_MESSAGE(h.status == 200, h.body);
  CHECK(check_one_version(d, a) == pid);
  // A clean stop and start: the app and its workers start afresh (nothing left over).
  REQUIRE(d.stop() == 0);
  CHECK(worker_processes(d).empty());
  d.restart();
  CHECK(check_one_version(d, a) != pid);
}

TEST_CASE("workers: bad names and empty commands are refused at start, nothing started") {
  AppRepo repo;
  repo.commit("vA");
  auto r = start_refused(repo, {{"workers", {{"Jobs", "x"}}}});
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.err.find("worker name \"Jobs\" must be 1-32 of a-z, 0-9 and '-'") != std::string::npos, r.err);
  r = start_refused(repo, {{"workers", {{"jobs", ""}}}});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("\"workers.jobs\" must not be empty") != std::string::npos);
}

TEST_CASE("workers, cron and run with several apps: each app's are its own") {
  const json own = {{"workers", {{"jobs", "exec sleep 3600"}}},
                    {"cron", json::array({{{"name", "tick"}, {"schedule", "@every 1s"}, {"command", "echo tick $SLOT_MACHINE_COMMIT"}}})}};
  TwoApps two(own);
  Daemon& d = two.d;
  const HostedApp &blog = two.blog, &shop = two.shop;
  const json b = app_status(d, "blog")["workers"], s = app_status(d, "shop")["workers"];
  REQUIRE(b.size() == 1);
  REQUIRE(s.size() == 1);
  CHECK(b[0]["pid"] != s[0]["pid"]);
  std::map<std::string, int> by_commit;
  for (const auto& p : worker_processes(d)) ++by_commit[p.commit];
  CHECK(by_commit == std::map<std::string, int>{{blog.commits[0], 1}, {shop.commits[0], 1}});
  CHECK(eventually([&] {
    return read_file(d.data_dir() / "apps" / "shop" / "cron" / "tick.log").find("tick " + shop.commits[0]) !=
           std::string::npos;
  }, 5s));
  const auto r = run({slot_machine_bin(), "run", "--app", "blog", "--api-port", std::to_string(d.api_port()), "--",
                      "sh", "-c", "echo $SLOT_MACHINE_COMMIT"},
                     two.server.home());
  CHECK(r.out == blog.commits[0] + "\n");
  CHECK(http_get(d.api_port(), "/apps/shop/logs?worker=jobs").status == 200);
  CHECK(http_get(d.api_port(), "/apps/shop/logs?cron=tick").body.find("tick " + shop.commits[0]) != std::string::npos);
}
