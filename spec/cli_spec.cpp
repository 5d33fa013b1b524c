// Contract §1: CLI texts and exit codes (scenarios 9, 10, 11, 14).

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fstream>

#include "harness.h"

using namespace spec;

TEST_CASE("9: no arguments prints usage and the command list, exit != 0") {
  TempDir d;
  auto r = run({slot_machine_bin()}, d.path);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("usage") != std::string::npos);
  for (const char* c : {"init", "start", "deploy", "rollback", "status", "version"})
    CHECK(r.err.find(c) != std::string::npos);
}

TEST_CASE("10: an unknown command is an error") {
  TempDir d;
  auto r = run({slot_machine_bin(), "badcmd"}, d.path);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("unknown command") != std::string::npos);
}

TEST_CASE("usage errors exit 2 with a message; help exits 0") {
  TempDir d;
  for (std::vector<std::string> args : {std::vector<std::string>{"-x"},
                                        {"deploy", "a", "b"},
                                        {"status", "--api-port", "abc"},
                                        {"status", "--api-port", "70000"},
                                        {"start", "--bogus"}}) {
    args.insert(args.begin(), slot_machine_bin());
    auto r = run(args, d.path);
    CHECK_MESSAGE(r.exit_code == 2, args[1] << " " << r.err);
    CHECK_MESSAGE(!r.err.empty(), args[1]);
  }
  CHECK(run({slot_machine_bin(), "--help"}, d.path).exit_code == 0);
  auto v = run({slot_machine_bin(), "--version"}, d.path);
  CHECK(v.exit_code == 0);
  CHECK(v.out.find("spec/1") != std::string::npos);
}

TEST_CASE("11: start without a config names slot-machine.json and suggests init") {
  TempDir d;
  auto r = run({slot_machine_bin(), "start", "--no-proxy"}, d.path);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("slot-machine.json") != std::string::npos);
  CHECK(r.err.find("init") != std::string::npos);
}

TEST_CASE("14: client commands with no daemon say `cannot reach`, even outside a git repo") {
  TempDir d;  // not a git repository
  int port = free_port();
  std::ofstream(d.path / "slot-machine.json") << "{\"api_port\": " << port << "}";
  for (auto cmd : {"deploy", "rollback", "status"}) {
    auto r = run({slot_machine_bin(), cmd}, d.path);
    CHECK_MESSAGE(r.exit_code != 0, cmd);
    CHECK_MESSAGE(r.err.find("cannot reach") != std::string::npos, cmd << ": " << r.err);
    CHECK_MESSAGE(r.err.find(std::to_string(port)) != std::string::npos, cmd << ": " << r.err);
  }
}

TEST_CASE("--help works on every subcommand; version prints spec/1") {
  TempDir d;
  for (auto cmd : {"init", "start", "deploy", "rollback", "status", "version"}) {
    auto r = run({slot_machine_bin(), cmd, "--help"}, d.path);
    CHECK_MESSAGE(r.exit_code == 0, cmd);
    CHECK_MESSAGE(r.out.find(cmd) != std::string::npos, cmd);
  }
  auto v = run({slot_machine_bin(), "version"}, d.path);
  CHECK(v.exit_code == 0);
  CHECK(v.out.find("slot-machine (cpp) spec/1") != std::string::npos);
}

TEST_CASE("invalid configs are one-line errors naming the field; nothing starts") {
  TempDir d;
  AppRepo repo;
  repo.commit("v1");
  struct Case {
    std::string text, expect;
  } cases[] = {
      {"{not json", "not valid JSON"},
      {R"({"port": 3000})", "\"start_command\" is required"},
      {R"({"start_command": "x", "port": 70000})", "\"port\" must be 1-65535, got 70000"},
      {R"({"start_command": "x", "port": "3000"})", "\"port\" must be an integer"},
      {R"({"start_command": "x", "drain_timeout_ms": -5})", "\"drain_timeout_ms\""},
      {R"({"start_command": "x", "env_file": "missing.env"})", "\"env_file\""},
      // A typo is named beside the error it causes, with the key it most likely meant.
      {R"({"start_comand": "x"})",
       "\"start_command\" is required (the command that starts your app); unknown key \"start_comand\" (did you "
       "mean \"start_command\"?)"},
      {R"({"start_command": "x", "port": 70000, "drain_timout_ms": 5, "colour": 1})",
       "unknown key \"colour\"; unknown key \"drain_timout_ms\" (did you mean \"drain_timeout_ms\"?)"},
      {"{\"start_command\": \"x\",\n \"port\": 3000,\n}", "line 3, column 1"},
  };
  for (const auto& c : cases) {
    std::ofstream(d.path / "slot-machine.json") << c.text;
    auto r = run({slot_machine_bin(), "start", "--no-proxy", "--repo", repo.dir().string()}, d.path,
                 {}, 10s);
    CHECK_MESSAGE(r.exit_code != 0, c.text);
    CHECK_MESSAGE(r.err.find(c.expect) != std::string::npos, c.text << " -> " << r.err);
    CHECK_MESSAGE(std::count(r.err.begin(), r.err.end(), '\n') == 1, r.err);
  }
  CHECK_FALSE(std::filesystem::exists(d.path / ".slot-machine"));
}

TEST_CASE("start: a bad --port or a non-repository is a clear error") {
  AppRepo repo;
  repo.write_config();
  auto bad_port = run({slot_machine_bin(), "start", "--no-proxy", "--config",
                       repo.config_path().string(), "--repo", repo.dir().string(), "--port",
                       "99999"},
                      repo.home(), {}, 10s);
  CHECK(bad_port.exit_code != 0);
  CHECK(bad_port.err == "slot-machine: --port must be 1-65535, got 99999\n");
  TempDir not_repo;
  auto no_repo = run({slot_machine_bin(), "start", "--no-proxy", "--config",
                      repo.config_path().string(), "--repo", not_repo.path.string()},
                     repo.home(), {}, 10s);
  CHECK(no_repo.exit_code != 0);
  CHECK(no_repo.err.find("not a git repository") != std::string::npos);
}

TEST_CASE("unknown config keys are a warning, not an error, with the key a typo most likely meant") {
  Site site({{"v1"}}, {{"colour", "blue"}, {"helth_endpoint", "/up"}});
  Daemon& d = site.d;
  CHECK(d.log().find("unknown key \"colour\" ignored") != std::string::npos);
  CHECK(d.log().find("unknown key \"helth_endpoint\" (did you mean \"health_endpoint\"?) ignored") != std::string::npos);
}

TEST_CASE("a client command with a ./slot-machine.json that is not JSON says where, exit 2, instead of "
          "trying the default port") {
  TempDir d;
  std::ofstream(d.path / "slot-machine.json") << "{\"api_port\": 9555,\n}\n";
  for (const char* cmd : {"status", "deploy", "rollback", "stop"}) {
    auto r = run({slot_machine_bin(), cmd}, d.path);
    CHECK_MESSAGE(r.exit_code == 2, cmd);
    CHECK_MESSAGE(r.err.find("slot-machine.json is not valid JSON") != std::string::npos, cmd << ": " << r.err);
    CHECK_MESSAGE(r.err.find("line 2, column 1") != std::string::npos, cmd << ": " << r.err);
    CHECK_MESSAGE(r.err.find("a comma after the last entry?") != std::string::npos, cmd << ": " << r.err);
    CHECK_MESSAGE(r.err.find("cannot reach") == std::string::npos, cmd << ": " << r.err);
  }
}

TEST_CASE("client commands read only api_port from ./slot-machine.json") {
  Site site({{"v1"}});
  Daemon& d = site.d;
  const std::string v1 = site.commits[0];
  TempDir client;
  std::ofstream(client.path / "slot-machine.json") << "{\"api_port\": " << d.api_port() << "}";
  auto dep = run({slot_machine_bin(), "deploy", v1}, client.path);
  CHECK_MESSAGE(dep.exit_code == 0, dep.err);
  CHECK(dep.out.find(v1) != std::string::npos);
  auto st = run({slot_machine_bin(), "status", "--json"}, client.path);
  CHECK(st.exit_code == 0);
  CHECK(json::parse(st.out)["live_commit"] == v1);
  auto text = run({slot_machine_bin(), "status"}, client.path);
  CHECK(text.out.find("healthy") != std::string::npos);
}

TEST_CASE("deploy with no COMMIT deploys HEAD of the repository in cwd") {
  Site site({{"v1"}, {"v2"}});
  Daemon& d = site.d;
  const std::string v2 = site.commits[1];
  auto r = d.cli({"deploy", "--json"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(json::parse(r.out)["commit"] == v2);
}

TEST_CASE("a failing deploy or rollback exits != 0 with the daemon's error") {
  Site site({{"v1"}});
  Daemon& d = site.d;
  auto rb = d.cli({"rollback"});
  CHECK(rb.exit_code != 0);
  CHECK(rb.err.find("nothing to roll back to") != std::string::npos);
  auto dep = d.cli({"deploy", "no-such-branch"});
  CHECK(dep.exit_code != 0);
  CHECK(dep.err.find("unknown commit \"no-such-branch\"") != std::string::npos);
}

TEST_CASE("a client right after `start &` waits for the daemon that will serve its port; with none, it fails at once") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  repo.write_config();
  const int api = repo.config()["api_port"];
  // As a script types it: the daemon in the background, then a command at once.
  const std::string bin = slot_machine_bin();
  const std::string script = fmt::format(
      "\"{0}\" start --no-proxy --config {1} --repo {2} --data {3} 2>{4}/daemon.err & daemon=$!; "
      "\"{0}\" status --api-port {5}; rc=$?; kill -TERM $daemon; wait $daemon; echo \"daemon exit $?\"; exit $rc",
      bin, repo.config_path().string(), repo.dir().string(), repo.data_dir().string(), repo.home().string(), api);
  auto r = run({"/bin/sh", "-c", script}, repo.home(), {}, 30s);
  CHECK_MESSAGE(r.exit_code == 0, r.out << r.err << read_file(repo.home() / "daemon.err"));
  CHECK(r.out.find("live:") != std::string::npos);
  CHECK(r.out.find("daemon exit 0") != std::string::npos);

  // No daemon for this port (other daemons may run): `cannot reach` without waiting.
  const auto began = std::chrono::steady_clock::now();
  auto none = run({bin, "status", "--api-port", std::to_string(free_port())}, repo.home());
  CHECK(none.exit_code == 1);
  CHECK(none.err.find("cannot reach") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - began < 5s);
}
