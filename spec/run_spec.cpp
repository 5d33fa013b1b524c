// Contract §16 one-off commands: `slot-machine run -- CMD` in the live release, on the
// caller's terminal (stdin, TTY, Ctrl-C, exit code), or over the API with --remote.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "harness.h"
#include "harness_process.h"

using namespace spec;

namespace {

RunResult run_in(Daemon& d, const std::vector<std::string>& before, const std::vector<std::string>& command) {
  std::vector<std::string> argv = {slot_machine_bin(), "run", "--api-port", std::to_string(d.api_port())};
  argv.insert(argv.end(), before.begin(), before.end());
  argv.push_back("--");
  argv.insert(argv.end(), command.begin(), command.end());
  return run(argv, d.data_dir().parent_path());
}

json last_entry(Daemon& d) { return http_get(d.api_port(), "/history?limit=1").json_body()["entries"][0]; }

}  // namespace

TEST_CASE("run: a command in the live slot with the app's environment; output, exit code and the journal") {
  Site site({{"vA"}, {"vB"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  auto r = run_in(d, {}, {"sh", "-c", "echo hi"});
  CHECK(r.exit_code == 1);  // nothing live yet
  CHECK_MESSAGE(r.err.find("nothing is live: deploy something first") != std::string::npos, r.err);
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  REQUIRE(d.deploy(site.commits[1]).status == 200);

  r = run_in(d, {}, {"sh", "-c", "echo \"$SLOT_MACHINE_COMMIT in $PWD, PORT=${PORT-none}\"; echo oops >&2; exit 7"});
  CHECK(r.exit_code == 7);
  CHECK_MESSAGE(r.out == site.commits[1] + " in " + (d.data_dir() / "slot-b").string() + ", PORT=none\n", r.out);
  CHECK(r.err == "oops\n");
  json e = last_entry(d);
  CHECK(e["action"] == "run");
  CHECK(e["exit_code"] == 7);
  CHECK(e["result"] == "failed");
  CHECK(e["how"] == "terminal");
  CHECK(e["command"] == "'sh' '-c' 'echo \"$SLOT_MACHINE_COMMIT in $PWD, PORT=${PORT-none}\"; echo oops >&2; exit 7'");
  CHECK(e["commit"] == site.commits[1]);

  // Words reach the command as they were given; the previous slot on request.
  r = run_in(d, {"--slot", "previous"}, {"printf", "[%s]", "two words", "it's", "$HOME"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "[two words][it's][$HOME]");
  r = run_in(d, {}, {"no-such-command-here"});
  CHECK(r.exit_code == 127);
  CHECK_MESSAGE(r.err.find("not found") != std::string::npos, r.err);
  CHECK(last_entry(d)["exit_code"] == 127);

  // Bad input: no command (exit 2), a bad slot, a bad body over the API.
  r = run({slot_machine_bin(), "run", "--api-port", std::to_string(d.api_port())}, d.data_dir());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("give the command after --") != std::string::npos);
  r = run_in(d, {"--slot", "b"}, {"true"});
  CHECK(r.exit_code == 2);
  CHECK(http_post(d.api_port(), "/run", R"({"command": []})").status == 400);
  CHECK(http_post(d.api_port(), "/run", R"({"command": ["x"], "slot": "a"})").status == 400);
  CHECK(http_post(d.api_port(), "/run", R"({"command": ["x"], "user": "root"})").status == 400);
  CHECK(http_post(d.api_port(), "/run", "not json").status == 400);
  CHECK(http_post(d.api_port(), "/run/done", R"({"run": 999999, "exit_code": 0})").status == 404);
  CHECK(http_get(d.api_port(), "/run").status == 405);
}

TEST_CASE("run --remote: the daemon runs it and streams the output and the exit code") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  const std::string remote = "http://127.0.0.1:" + std::to_string(d.api_port());
  auto r = run({slot_machine_bin(), "run", "--remote", remote, "--", "sh", "-c",
                "echo one; echo two >&2; test -t 0 || echo no-tty; exit 3"},
               d.data_dir());
  CHECK_MESSAGE(r.exit_code == 3, r.err);
  CHECK_MESSAGE(r.out == "one\ntwo\nno-tty\n", r.out);
  const json e = http_get(d.api_port(), "/history?limit=1").json_body()["entries"][0];
  CHECK(e["action"] == "run");
  CHECK(e["how"] == "api");
  CHECK(e["exit_code"] == 3);
  // The raw API: NDJSON events.
  const Http h = http_post(d.api_port(), "/run", R"({"command": ["sh", "-c", "echo x"]})");
  CHECK(h.status == 200);
  CHECK_MESSAGE(h.body.find(R"({"event":"output","line":"x"})") != std::string::npos, h.body);
  CHECK(h.body.find(R"({"event":"exit","exit_code":0})") != std::string::npos);
}

TEST_CASE("run on a terminal: stdin is the caller's TTY and Ctrl-C reaches the command") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  TempDir io;
  int in[2];
  REQUIRE(pipe(in) == 0);
  const std::string cli = fmt::format(
      "exec {} run --api-port {} -- sh -c 'test -t 0 && echo stdin-is-a-tty; trap \"echo got-ctrl-c; exit 5\" INT; "
      "echo ready; while :; do sleep 0.1; done'",
      slot_machine_bin(), d.api_port());
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    const int out = open((io.path / "out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(out, 2);
    close(in[1]);
    // script(1) gives the CLI a pseudo-terminal and types what we write into it. It runs
    // the line with $SHELL -c, and dash does not exec a lone command there: without the
    // `exec` that shell would sit in the terminal's process group, die of the Ctrl-C and
    // make script report 130 whatever the CLI returned.
    execlp("script", "script", "-q", "-e", "-c", cli.c_str(), "/dev/null", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (read_file(io.path / "out").find("ready") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  CHECK_MESSAGE(read_file(io.path / "out").find("stdin-is-a-tty") != std::string::npos, read_file(io.path / "out"));
  REQUIRE(write(in[1], "\x03", 1) == 1);  // Ctrl-C, as typed
  const int code = detail::wait_exit(pid, 10s);
  close(in[1]);
  if (code == -1) kill(pid, SIGKILL), waitpid(pid, nullptr, 0);
  CHECK_MESSAGE(code == 5, read_file(io.path / "out"));
  CHECK(read_file(io.path / "out").find("got-ctrl-c") != std::string::npos);
  CHECK(http_get(d.api_port(), "/history?limit=1").json_body()["entries"][0]["exit_code"] == 5);
}

TEST_CASE("run: the previous slot is refused (409) while an operation may replace it; live still runs") {
  Site site({{"vA"}, {"vB"}, {"vC", "", {{"hang", "1"}}}},
            {{"setup_command", "if [ -e hang ]; then exec sleep 1000; fi"}}, kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  REQUIRE(d.deploy(site.commits[1]).status == 200);
  std::jthread deploying([&] { d.deploy(site.commits[2]); });
  d.wait_status([](const json& s) { return s["stage"] == "setup"; }, 10s);
  auto r = run_in(d, {"--slot", "previous"}, {"true"});
  CHECK(r.exit_code == 1);
  CHECK_MESSAGE(r.err.find("the previous slot is being replaced (deploy running)") != std::string::npos, r.err);
  r = run_in(d, {}, {"sh", "-c", "echo $SLOT_MACHINE_COMMIT"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == site.commits[1] + "\n");
  CHECK(http_post(d.api_port(), "/cancel", "").status == 200);
}
