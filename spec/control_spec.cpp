// Contract §12: control over running operations — setup_timeout_ms.

#include <doctest/doctest.h>

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
