// Contract §12: control over running operations: setup_timeout_ms.

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

TEST_CASE("setup_timeout_ms: a hanging setup is killed, the deploy fails at setup, the lock is free") {
  Site site({{"vA"}, {"vB", "", {{"hang", "1"}}}}, {{"setup_command", kHangingSetup}, {"setup_timeout_ms", 600}});
  AppRepo& repo = site.repo;
  Daemon& d = site.d;
  const std::string good = site.commits[0], hangs = site.commits[1];
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
