// Contract §2: init (scenarios 12, 13).

#include <doctest/doctest.h>

#include <fstream>

#include "harness.h"

using namespace spec;

TEST_CASE("12: init in a bun project writes bun commands, env_file and defaults") {
  TempDir d;
  std::ofstream(d.path / "bun.lock") << "";
  std::ofstream(d.path / "package.json") << R"({"name":"x","scripts":{"start":"bun server/index.ts"}})";
  std::ofstream(d.path / ".env") << "A=1\n";
  auto r = run({slot_machine_bin(), "init"}, d.path);
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("slot-machine.json") != std::string::npos);
  auto c = json::parse(read_file(d.path / "slot-machine.json"));
  CHECK(c["setup_command"] == "bun install --frozen-lockfile");
  CHECK(c["start_command"] == "bun server/index.ts");  // scripts.start itself (contract §2)
  CHECK(c["env_file"] == ".env");
  CHECK(c["health_endpoint"] == "/healthz");
  CHECK(c["port"] == 3000);
  CHECK(c["internal_port"] == 3000);
  CHECK(c["health_timeout_ms"] == 10000);
  CHECK(c["drain_timeout_ms"] == 5000);
  CHECK(c["api_port"] == 9100);
}

TEST_CASE("init --runner writes the package manager's runner for scripts.start") {
  TempDir d;
  std::ofstream(d.path / "package-lock.json") << "{}";
  std::ofstream(d.path / "package.json") << R"({"scripts":{"start":"node server.js"}})";
  auto r = run({slot_machine_bin(), "init", "--runner"}, d.path);
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(json::parse(read_file(d.path / "slot-machine.json"))["start_command"] == "npm start");
}

TEST_CASE("13: init twice puts .slot-machine in .gitignore exactly once") {
  TempDir d;
  std::ofstream(d.path / "package-lock.json") << "{}";
  std::ofstream(d.path / ".gitignore") << "node_modules";  // no trailing newline
  CHECK(run({slot_machine_bin(), "init"}, d.path).exit_code == 0);
  auto again = run({slot_machine_bin(), "init"}, d.path);
  CHECK(again.exit_code == 0);
  CHECK(again.out.find("--force") != std::string::npos);
  CHECK(read_file(d.path / ".gitignore") == "node_modules\n.slot-machine\n");
  CHECK(json::parse(read_file(d.path / "slot-machine.json"))["setup_command"] == "npm ci");
}

TEST_CASE("init leaves an existing config alone unless --force; Procfile web: wins") {
  TempDir d;
  std::ofstream(d.path / "requirements.txt") << "flask\n";
  std::ofstream(d.path / "Procfile") << "web: gunicorn app:app\n";
  std::ofstream(d.path / "slot-machine.json") << "{\"mine\": true}";
  CHECK(run({slot_machine_bin(), "init"}, d.path).exit_code == 0);
  CHECK(read_file(d.path / "slot-machine.json") == "{\"mine\": true}");
  CHECK(run({slot_machine_bin(), "init", "--force"}, d.path).exit_code == 0);
  auto c = json::parse(read_file(d.path / "slot-machine.json"));
  CHECK(c["setup_command"] == "pip install -r requirements.txt");
  CHECK(c["start_command"] == "gunicorn app:app");
  CHECK_FALSE(c.contains("env_file"));
}

TEST_CASE("init in an unrecognised directory fails and writes nothing") {
  TempDir d;
  auto r = run({slot_machine_bin(), "init"}, d.path);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("could not detect") != std::string::npos);
  CHECK_FALSE(fs::exists(d.path / "slot-machine.json"));
}

TEST_CASE("init in a bare repository says why it cannot detect the project and where the example config is") {
  TempDir d;
  sh("git init -q --bare app.git", d.path);
  auto r = run({slot_machine_bin(), "init"}, d.path / "app.git");
  CHECK(r.exit_code == 1);
  CHECK_MESSAGE(r.err.find("is a bare git repository") != std::string::npos, r.err);
  CHECK_MESSAGE(r.err.find("slot-machine.json.example") != std::string::npos, r.err);
  CHECK_MESSAGE(r.err.find("--repo " + (d.path / "app.git").string()) != std::string::npos, r.err);
  CHECK_FALSE(fs::exists(d.path / "app.git" / "slot-machine.json"));
}
