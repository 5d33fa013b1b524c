// One daemon owns a data directory (its apps), and `slot-machine stop` ends it the way
// SIGTERM does. A second daemon on the same data directory used to adopt the first one's
// live app and kill it when it stopped.

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "harness.h"

using namespace spec;

namespace {

RunResult start_second(AppRepo& repo, const std::vector<std::string>& extra, const fs::path& data) {
  std::vector<std::string> argv{slot_machine_bin(), "start", "--config", repo.config_path().string(), "--repo",
                                repo.dir().string(), "--data", data.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv, repo.home(), {}, 10s);
}

}  // namespace

TEST_CASE("a second daemon on the same data directory exits 2 at once naming the owner, also with the "
          "--no-proxy --port the port message used to advise; the first keeps serving, also after an upgrade") {
  Site site({{"v1"}}, json::object(), kProxyMode);
  AppRepo& repo = site.repo;
  Daemon& d = site.d;
  const std::string v1 = site.commits[0];
  REQUIRE(d.deploy(v1).status == 200);
  const int app_pid = d.status()["live_pid"];

  for (const auto& extra : std::vector<std::vector<std::string>>{{}, {"--no-proxy", "--port", std::to_string(free_port())}}) {
    auto r = start_second(repo, extra, repo.data_dir());
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(r.err.find(fmt::format("another slot-machine (pid {}) owns {}", d.pid(), repo.data_dir().string())) !=
                      std::string::npos, r.err);
    CHECK_MESSAGE(r.err.find("--data") != std::string::npos, r.err);
  }
  json s = d.status();
  CHECK(s["live_pid"] == app_pid);  // nothing adopted, nothing killed
  CHECK(s["healthy"] == true);
  CHECK(http_get(d.public_port(), "/").body.find("hello from v1") != std::string::npos);

  // The lock passes to the new daemon of an upgrade and never lapses.
  auto up = d.cli({"upgrade"});
  REQUIRE_MESSAGE(up.exit_code == 0, up.err);
  const int new_pid = d.status()["daemon_pid"];
  CHECK(d.follow_upgrade(new_pid) == 0);
  auto again = start_second(repo, {}, repo.data_dir());
  CHECK(again.exit_code == 2);
  CHECK_MESSAGE(again.err.find(fmt::format("another slot-machine (pid {}) owns", new_pid)) != std::string::npos, again.err);
  CHECK(d.status()["live_pid"] == app_pid);
}

TEST_CASE("a port held by another slot-machine is named, and --no-proxy is not advised then") {
  Site site({{"v1"}}, json::object(), kProxyMode);
  AppRepo& repo = site.repo;
  Daemon& d = site.d;
  REQUIRE(d.deploy(repo.commit("v2")).status == 200);  // the proxy listens from the first deploy on
  auto r = start_second(repo, {"--port", std::to_string(free_port())}, repo.home() / "other-data");
  CHECK(r.exit_code == 1);
  CHECK_MESSAGE(r.err.find(fmt::format("port {} is already in use by another slot-machine (pid {}", d.public_port(),
                                       d.pid())) != std::string::npos, r.err);
  CHECK_MESSAGE(r.err.find("--no-proxy") == std::string::npos, r.err);
}

TEST_CASE("slot-machine stop drains the apps and ends the daemon as SIGTERM does; it needs the API token") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  const fs::path token = secret_file(repo, "token", "stop-token-0123456789");
  repo.write_config({{"api_token_file", token.string()}});
  Daemon d(repo, kProxyMode);
  // Without the token: refused, nothing stops.
  CHECK(http_post(d.api_port(), "/shutdown", "{}").status == 401);
  // The CLI in the config's directory finds api_port and the token file there.
  auto r = run({slot_machine_bin(), "deploy", v1, "-q"}, repo.home());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto stopped = run({slot_machine_bin(), "stop"}, repo.home());
  CHECK_MESSAGE(stopped.exit_code == 0, stopped.err);
  CHECK_MESSAGE(stopped.out.find("stopped") != std::string::npos, stopped.out);
  CHECK(d.log().find("draining every slot") != std::string::npos);
  check_clean_stop(d);  // exited 0, no process left
  auto none = run({slot_machine_bin(), "stop", "--api-port", std::to_string(d.api_port())}, repo.dir());
  CHECK(none.exit_code == 1);
  CHECK(none.err.find("cannot reach") != std::string::npos);
}
