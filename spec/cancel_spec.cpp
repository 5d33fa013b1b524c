// Contract §12: control over running operations: cancelling a deploy or a rollback.

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

TEST_CASE("cancel with nothing running is 409; the CLI says so and exits 1") {
  Site site({{"vA"}});
  Daemon& d = site.d;
  auto r = http_post(d.api_port(), "/cancel", "");
  CHECK(r.status == 409);
  CHECK(r.json_body()["error"].get<std::string>().find("nothing to cancel") != std::string::npos);
  auto cli = d.cli({"cancel"});
  CHECK(cli.exit_code == 1);
  CHECK(cli.err.find("nothing to cancel") != std::string::npos);
  CHECK(http_get(d.api_port(), "/cancel").status == 405);
}

TEST_CASE("cancel during setup: stops within a second, kills the setup, journals cancelled; "
          "the next deploy works") {
  Site site({{"vA"}, {"vB", "", {{"hang", "1"}}}}, {{"setup_command", kHangingSetup}});
  AppRepo& repo = site.repo;
  Daemon& d = site.d;
  const std::string good = site.commits[0], hangs = site.commits[1];
  REQUIRE(d.deploy(good).status == 200);
  const int live_pid = d.status()["live_pid"];

  RunResult streamed;  // the CLI streams progress (NDJSON) and must end with the cancellation
  std::jthread deploying([&] { streamed = d.cli({"deploy", hangs}); });
  REQUIRE(wait_stage(d, "deploy", "setup"));
  // Two cancels at once are harmless: at least one answers 200, none breaks anything.
  Http c1, c2;
  std::jthread other([&] { c2 = http_post(d.api_port(), "/cancel", ""); });
  const auto asked = std::chrono::steady_clock::now();
  c1 = http_post(d.api_port(), "/cancel", "");
  other.join();
  deploying.join();
  CHECK(std::chrono::steady_clock::now() - asked < 1500ms);
  CHECK((c1.status == 200 || c2.status == 200));
  for (const Http* c : {&c1, &c2}) {
    CHECK((c->status == 200 || c->status == 409));
    if (c->status == 200) {
      CHECK(c->json_body()["cancelled"] == "deploy");
      CHECK(c->json_body()["stage"] == "setup");
    }
  }
  CHECK(streamed.exit_code == 1);
  CHECK_MESSAGE(streamed.err.find("cancelled") != std::string::npos, streamed.err);

  auto e = last_journal_entry(d);
  CHECK(e["action"] == "deploy");
  CHECK(e["result"] == "cancelled");
  CHECK(e["stage"] == "setup");
  auto s = d.status();
  CHECK(s["live_commit"] == good);
  CHECK(s["live_pid"] == live_pid);
  CHECK(s["operation"] == "");
  CHECK(tagged_processes(d.tag()).size() == 2);  // the daemon and the live app
  fs::remove(repo.dir() / "hang");
  CHECK(d.deploy(repo.commit("vC")).status == 200);
}

TEST_CASE("cancel while a large checkout writes its files: stops within a second, nothing "
          "left running, the next deploy into that slot has none of its files") {
  AppRepo repo;
  std::string good = repo.commit("vA");
  std::string big = commit_many_files(repo, 30000);
  repo.write_config();
  Daemon d(repo);
  REQUIRE(d.deploy(good).status == 200);
  const int live_pid = d.status()["live_pid"];

  RunResult streamed;
  std::jthread deploying([&] { streamed = d.cli({"deploy", big}); });
  REQUIRE(wait_stage(d, "deploy", "checkout"));
  // libgit2 is writing: files of the new commit are appearing in slot b.
  const fs::path written = repo.data_dir() / "slot-b" / "big";
  for (int i = 0; i < 500 && !fs::exists(written); ++i) std::this_thread::sleep_for(10ms);
  REQUIRE_MESSAGE(fs::exists(written), "the checkout wrote nothing in 5 s");
  std::this_thread::sleep_for(100ms);
  const auto asked = std::chrono::steady_clock::now();
  Http c = http_post(d.api_port(), "/cancel", "");
  deploying.join();
  const auto took = std::chrono::steady_clock::now() - asked;
  MESSAGE("the deploy ended " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                              << " ms after the cancel");
  CHECK_MESSAGE(took < 1000ms, "the deploy ended "
                                   << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                   << " ms after the cancel");
  CHECK(c.status == 200);
  CHECK(c.json_body()["stage"] == "checkout");
  CHECK(streamed.exit_code == 1);
  CHECK_MESSAGE(streamed.err.find("cancelled") != std::string::npos, streamed.err);
  auto e = last_journal_entry(d);
  CHECK(e["result"] == "cancelled");
  CHECK(e["stage"] == "checkout");
  CHECK(d.status()["live_pid"] == live_pid);
  CHECK(tagged_processes(d.tag()).size() == 2);  // the daemon and the live app: no checkout left

  // The next deploy goes to slot b again; nothing of the cut-short checkout remains there.
  sh("git rm -rq big && git commit -qm small", repo.dir());
  const std::string small = sh("git rev-parse HEAD", repo.dir()).substr(0, 40);
  auto r = d.deploy(small);
  CHECK(r.status == 200);
  CHECK(r.json_body()["slot"] == "b");
  CHECK_FALSE(fs::exists(written));
  CHECK(fs::exists(repo.data_dir() / "slot-b" / "VERSION"));
  check_clean_stop(d);
}

TEST_CASE("cancel during the health wait (proxy): the live app is untouched, the new one is gone") {
  Site site({{"vA"}, {"vB", "--start-unhealthy"}}, {{"health_timeout_ms", 30000}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0], never = site.commits[1];
  REQUIRE(d.deploy(a).status == 200);
  const int live_pid = d.status()["live_pid"];
  Http r;
  std::jthread deploying([&] { r = d.deploy(never); });
  REQUIRE(wait_stage(d, "deploy", "health"));
  auto c = d.cli({"cancel"});
  const auto asked = std::chrono::steady_clock::now();
  deploying.join();
  CHECK(std::chrono::steady_clock::now() - asked < 1500ms);
  CHECK(c.exit_code == 0);
  CHECK(c.out.find("cancelled the deploy at stage health") != std::string::npos);
  CHECK(r.status == 500);
  CHECK(r.json_body()["stage"] == "health");
  CHECK(r.json_body()["error"].get<std::string>().find("cancelled") != std::string::npos);
  auto s = d.status();
  CHECK(s["live_commit"] == a);
  CHECK(s["live_pid"] == live_pid);
  CHECK(http_get(d.public_port(), "/").status == 200);
  CHECK(tagged_processes(d.tag()).size() == 2);
}

TEST_CASE("cancel while waiting for in-flight requests (proxy): traffic goes back to the old app") {
  Site site({{"vA"}, {"vB"}}, {{"drain_timeout_ms", 20000}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1];
  REQUIRE(d.deploy(a).status == 200);
  const int live_pid = d.status()["live_pid"];
  Http slow;
  std::jthread in_flight([&] { slow = http_get(d.public_port(), "/slow?ms=3000", 10s); });
  std::this_thread::sleep_for(200ms);
  Http r;
  std::jthread deploying([&] { r = d.deploy(b); });
  REQUIRE(wait_stage(d, "deploy", "drain"));
  auto c = http_post(d.api_port(), "/cancel", "");
  const auto asked = std::chrono::steady_clock::now();
  deploying.join();
  CHECK(std::chrono::steady_clock::now() - asked < 1500ms);
  CHECK(c.status == 200);
  CHECK(c.json_body()["stage"] == "drain");
  CHECK(r.status == 500);
  CHECK(r.json_body()["stage"] == "drain");
  auto s = d.status();
  CHECK(s["live_commit"] == a);
  CHECK(s["live_pid"] == live_pid);
  CHECK(http_get(d.public_port(), "/").body.find("hello from vA") != std::string::npos);
  in_flight.join();
  CHECK(slow.status == 200);  // the old app was never stopped
  CHECK(tagged_processes(d.tag()).size() == 2);
  CHECK(last_journal_entry(d)["result"] == "cancelled");
}

TEST_CASE("cancel a rollback whose app is slow to boot (direct): the live version is started again") {
  AppRepo repo;
  std::string a = repo.commit("vA");
  std::string b = repo.commit("vB");
  // The boot delay comes from a file per slot outside the repository, so the same commit
  // boots fast when deployed and slowly when rolled back to, and nothing is rewritten
  // while a starting app may still be reading it.
  const fs::path delay = repo.home() / "boot-delay-";
  std::ofstream(delay.string() + "a") << "0";
  std::ofstream(delay.string() + "b") << "0";  // vB, started again after the cancel, boots at once
  repo.write_config({{"health_timeout_ms", 60000},
                     {"start_command", "exec \"$TESTAPP\" $(cat flags) --boot-delay $(cat '" + delay.string() +
                                           "'$SLOT_MACHINE_SLOT)"}});
  Daemon d(repo);
  REQUIRE(d.deploy(a).status == 200);
  REQUIRE(d.deploy(b).status == 200);
  std::ofstream(delay.string() + "a") << "30";  // vA, in slot a, boots slowly when rolled back to
  Http r;
  std::jthread rolling([&] { r = d.rollback(); });
  REQUIRE(wait_stage(d, "rollback", "health"));
  auto c = http_post(d.api_port(), "/cancel", "");
  const auto asked = std::chrono::steady_clock::now();
  rolling.join();
  CHECK(std::chrono::steady_clock::now() - asked < 1500ms);
  CHECK(c.json_body()["cancelled"] == "rollback");
  CHECK(r.status == 500);
  CHECK(r.json_body()["stage"] == "health");
  const std::string error = r.json_body()["error"];
  CHECK(error.find("cancelled") != std::string::npos);
  CHECK(error.find("was started again") != std::string::npos);
  auto s = d.wait_status([](const json& j) { return j["healthy"] == true; }, 10s);
  CHECK(s["live_commit"] == b);
  CHECK(s["previous_commit"] == a);  // still there to roll back to
  CHECK(http_get(d.public_port(), "/").status == 200);
  CHECK(last_journal_entry(d)["action"] == "rollback");
  CHECK(last_journal_entry(d)["result"] == "cancelled");
  check_clean_stop(d);
}
