// Contract §12: control over running operations — setup_timeout_ms.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <httplib.h>

#include <fstream>
#include <atomic>
#include <thread>

#include "harness.h"

using namespace spec;

namespace {
// Setup hangs in a commit that has a `hang` file: the whole group (a plain background
// child, one that left the group with setsid, and the setup itself) must be killed.
const char* kHangingSetup =
    "if [ -e hang ]; then echo installing; sleep 1000 & setsid sleep 1000 & exec sleep 1000; fi";
}  // namespace

TEST_CASE("setup_timeout_ms: a hanging setup is killed, the deploy fails at setup, the lock is free") {
  AppRepo repo;
  std::string good = repo.commit("vA");
  std::string hangs = repo.commit("vB", "", {{"hang", "1"}});
  repo.write_config({{"setup_command", kHangingSetup}, {"setup_timeout_ms", 600}});
  Daemon d(repo);
  REQUIRE(d.deploy(good).status == 200);  // slot a

  const auto began = std::chrono::steady_clock::now();
  auto r = d.deploy(hangs);  // slot b
  const auto took = std::chrono::steady_clock::now() - began;
  CHECK(r.status == 500);
  auto body = r.json_body();
  CHECK(body["stage"] == "setup");
  const std::string error = body["error"];
  CHECK_MESSAGE(error.find("timed out after") != std::string::npos, error);
  CHECK(error.find("setup_timeout_ms") != std::string::npos);
  CHECK(error.find("installing") != std::string::npos);  // its last output
  CHECK(took >= 500ms);
  CHECK(took < 5s);

  // Nothing of the setup is left: the daemon and the live app only.
  auto s = d.status();
  CHECK(s["live_commit"] == good);
  CHECK(s["healthy"] == true);
  CHECK(tagged_processes(d.tag()).size() == 2);
  // Slot b was being overwritten: it is not offered as previous.
  CHECK(s["previous_slot"] == "");
  CHECK(d.rollback().status == 400);
  // The lock is free at once: another deploy works.
  fs::remove(repo.dir() / "hang");
  std::string next = repo.commit("vC");
  CHECK(d.deploy(next).status == 200);
  check_clean_stop(d);
}

TEST_CASE("setup_timeout_ms: out of range is a config error naming the field; 0 means no limit") {
  AppRepo repo;
  repo.commit("vA");
  repo.write_config({{"setup_timeout_ms", 86400001}});
  auto r = run({slot_machine_bin(), "start", "--config", repo.config_path().string(), "--repo",
                repo.dir().string(), "--data", repo.data_dir().string()},
               repo.home(), {}, 10s);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("\"setup_timeout_ms\" must be 0-86400000 milliseconds, got 86400001") !=
        std::string::npos);

  std::string a = repo.commit("vB");
  repo.write_config({{"setup_timeout_ms", 0}, {"setup_command", "sleep 1"}});
  Daemon d(repo);
  CHECK(d.deploy(a).status == 200);
  check_clean_stop(d);
}

// ---- cancel -------------------------------------------------------------------------

namespace {
/// Waits until the daemon reports `operation` at `stage`.
bool wait_stage(Daemon& d, const std::string& operation, const std::string& stage) {
  auto s = d.wait_status([&](const json& j) { return j["operation"] == operation && j["stage"] == stage; },
                         10s);
  return s["operation"] == operation && s["stage"] == stage;
}

json last_journal_entry(Daemon& d) {
  return http_get(d.api_port(), "/history?limit=1").json_body()["entries"][0];
}

/// Commits `n` one-line files under big/ (with git fast-import: seconds saved) on top of
/// HEAD; returns the hash. Checking 30,000 files out takes libgit2 about two seconds here.
std::string commit_many_files(AppRepo& repo, int n) {
  const fs::path stream = repo.home() / "big.fast-import";
  {
    std::ofstream out(stream);
    out << "blob\nmark :1\ndata 2\nx\n"
        << "commit refs/heads/main\ncommitter spec <spec@example.com> 0 +0000\ndata 4\nbig\n"
        << "from " << sh("git rev-parse HEAD", repo.dir()).substr(0, 40) << "\n";
    for (int i = 0; i < n; ++i) out << "M 100644 :1 big/d" << i / 1000 << "/f" << i << "\n";
  }
  sh("git fast-import --quiet < " + stream.string() + " && git reset -q --hard main", repo.dir());
  std::string hash = sh("git rev-parse HEAD", repo.dir());
  return hash.substr(0, 40);
}
}  // namespace

TEST_CASE("cancel with nothing running is 409; the CLI says so and exits 1") {
  AppRepo repo;
  repo.commit("vA");
  repo.write_config();
  Daemon d(repo);
  auto r = http_post(d.api_port(), "/cancel", "");
  CHECK(r.status == 409);
  CHECK(r.json_body()["error"].get<std::string>().find("nothing to cancel") != std::string::npos);
  auto cli = d.cli({"cancel"});
  CHECK(cli.exit_code == 1);
  CHECK(cli.err.find("nothing to cancel") != std::string::npos);
  CHECK(http_get(d.api_port(), "/cancel").status == 405);
  check_clean_stop(d);
}

TEST_CASE("cancel during setup: stops within a second, kills the setup, journals cancelled; "
          "the next deploy works") {
  AppRepo repo;
  std::string good = repo.commit("vA");
  std::string hangs = repo.commit("vB", "", {{"hang", "1"}});
  repo.write_config({{"setup_command", kHangingSetup}});
  Daemon d(repo);
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
  check_clean_stop(d);
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
  AppRepo repo;
  std::string a = repo.commit("vA");
  std::string never = repo.commit("vB", "--start-unhealthy");
  repo.write_config({{"health_timeout_ms", 30000}});
  Daemon d(repo, kProxyMode);
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
  check_clean_stop(d);
}

TEST_CASE("cancel while waiting for in-flight requests (proxy): traffic goes back to the old app") {
  AppRepo repo;
  std::string a = repo.commit("vA");
  std::string b = repo.commit("vB");
  repo.write_config({{"drain_timeout_ms", 20000}});
  Daemon d(repo, kProxyMode);
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
  check_clean_stop(d);
}

TEST_CASE("cancel a rollback whose app is slow to boot (direct): the live version is started again") {
  AppRepo repo;
  std::string a = repo.commit("vA");
  std::string b = repo.commit("vB");
  // The boot delay comes from a file outside the repository, so the same commit boots
  // fast when deployed and slowly when rolled back to.
  const fs::path delay = repo.home() / "boot-delay";
  std::ofstream(delay) << "0";
  repo.write_config({{"health_timeout_ms", 60000},
                     {"start_command", "exec \"$TESTAPP\" $(cat flags) --boot-delay $(cat '" +
                                           delay.string() + "')"}});
  Daemon d(repo);
  REQUIRE(d.deploy(a).status == 200);
  REQUIRE(d.deploy(b).status == 200);
  std::ofstream(delay) << "30";
  Http r;
  std::jthread rolling([&] { r = d.rollback(); });
  REQUIRE(wait_stage(d, "rollback", "health"));
  std::ofstream(delay) << "0";  // vB, started again after the cancel, boots at once
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

// ---- restart --------------------------------------------------------------------------

TEST_CASE("restart with nothing live is 400 \"nothing is live\"") {
  AppRepo repo;
  repo.commit("vA");
  repo.write_config();
  Daemon d(repo);
  auto r = http_post(d.api_port(), "/restart", "");
  CHECK(r.status == 400);
  CHECK(r.json_body()["error"].get<std::string>().find("nothing is live") != std::string::npos);
  auto cli = d.cli({"restart"});
  CHECK(cli.exit_code == 1);
  CHECK(cli.err.find("nothing is live") != std::string::npos);
  check_clean_stop(d);
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

// ---- waiting for a running operation -------------------------------------------------

namespace {
/// POST with `Prefer: <prefer>`.
Http post_prefer(int port, const std::string& path, const std::string& body, const std::string& prefer) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  auto res = c.Post(path, {{"Prefer", prefer}}, body, "application/json");
  return res ? Http{res->status, res->body} : Http{};
}
std::string deploy_body(const std::string& commit) { return json{{"commit", commit}}.dump(); }
}  // namespace

TEST_CASE("Prefer: wait that is not a whole number of seconds from 0 to 86400 is 400") {
  AppRepo repo;
  std::string a = repo.commit("vA");
  repo.write_config();
  Daemon d(repo);
  for (const char* bad : {"wait=abc", "wait=-1", "wait=86401", "wait=99999999999", "wait=", "wait=1.5"}) {
    auto r = post_prefer(d.api_port(), "/deploy", deploy_body(a), bad);
    CHECK_MESSAGE(r.status == 400, bad);
    CHECK(r.body.find("Prefer: wait must be a whole number of seconds") != std::string::npos);
  }
  CHECK(d.status()["live_commit"] == "");  // nothing was deployed
  CHECK(post_prefer(d.api_port(), "/deploy", deploy_body(a), "respond-async, wait=5").status == 200);
  check_clean_stop(d);
}

TEST_CASE("waiting callers are served in arrival order; one that does not wait still gets 409; "
          "a wait that runs out is 409") {
  AppRepo repo;
  std::string slow = repo.commit("vA", "--boot-delay 2");
  std::string b = repo.commit("vB");
  std::string c = repo.commit("vC");
  repo.write_config();
  Daemon d(repo);
  Http first, second, third;
  std::jthread t1([&] { first = d.deploy(slow); });
  REQUIRE(wait_stage(d, "deploy", "health"));
  std::jthread t2([&] { second = post_prefer(d.api_port(), "/deploy", deploy_body(b), "wait=30"); });
  std::this_thread::sleep_for(200ms);
  std::jthread t3([&] { third = post_prefer(d.api_port(), "/deploy", deploy_body(c), "wait=30"); });
  std::this_thread::sleep_for(200ms);
  CHECK(d.deploy(c).status == 409);  // no Prefer: refused at once, as before
  auto expired = post_prefer(d.api_port(), "/deploy", deploy_body(c), "wait=1");
  CHECK(expired.status == 409);
  CHECK(expired.body.find("waited 1 s") != std::string::npos);
  t1.join();
  t2.join();
  t3.join();
  CHECK(first.status == 200);
  CHECK(second.status == 200);
  CHECK(third.status == 200);
  auto h = http_get(d.api_port(), "/history?limit=3").json_body()["entries"];
  REQUIRE(h.size() == 3);
  CHECK(h[2]["commit"] == slow);  // newest first
  CHECK(h[1]["commit"] == b);
  CHECK(h[0]["commit"] == c);
  CHECK(d.status()["live_commit"] == c);
  check_clean_stop(d);
}

TEST_CASE("a waiting caller that disconnects gives up its place; the daemon's shutdown answers "
          "waiting callers 503") {
  AppRepo repo;
  std::string slow = repo.commit("vA", "--boot-delay 2");
  std::string gone = repo.commit("vGone");
  std::string b = repo.commit("vB", "--boot-delay 3");
  repo.write_config();
  Daemon d(repo);
  std::jthread t1([&] { d.deploy(slow); });
  REQUIRE(wait_stage(d, "deploy", "health"));
  // A caller that waits, then goes away.
  const std::string body = deploy_body(gone);
  const std::string req = "POST /deploy HTTP/1.1\r\nHost: x\r\nPrefer: wait=30\r\nContent-Type: "
                          "application/json\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\n\r\n" + body;
  std::jthread quitter([&] {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(d.api_port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0)
      (void)!send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(500ms);
    close(fd);
  });
  quitter.join();
  t1.join();
  std::this_thread::sleep_for(300ms);
  auto h = http_get(d.api_port(), "/history?limit=5").json_body()["entries"];
  for (const auto& e : h) CHECK(e["commit"] != gone);  // it never ran
  CHECK(d.status()["live_commit"] == slow);

  // Shutdown while one operation runs and another caller waits: the waiter gets 503.
  Http running, waiting;
  std::jthread t2([&] { running = d.deploy(b); });
  REQUIRE(wait_stage(d, "deploy", "health"));
  std::jthread t3([&] { waiting = post_prefer(d.api_port(), "/deploy", deploy_body(slow), "wait=30"); });
  std::this_thread::sleep_for(300ms);
  CHECK(d.stop() == 0);
  t2.join();
  t3.join();
  CHECK(waiting.status == 503);
  CHECK(tagged_processes(d.tag()).empty());
}
