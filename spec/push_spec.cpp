// Contract §9: deploy on `git push` (slot-machine hook install), and a deploy of a commit
// the daemon's repository lacks fetching it from origin first.

#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "harness.h"

using namespace spec;

namespace {

std::string head_of(const fs::path& repo, const std::string& ref = "main") {
  const std::string h = sh("git rev-parse " + ref, repo);
  return h.substr(0, 40);
}

/// A clone of `from` in `dir` with an identity, to push from.
void clone(const fs::path& from, const fs::path& dir) {
  sh(fmt::format("git clone -q {} {} && git -C {} config user.email dev@example.com && "
                 "git -C {} config user.name dev", from.string(), dir.string(), dir.string(), dir.string()),
     dir.parent_path());
}

/// Commits VERSION=version (and flags) in `dir`; returns the hash.
std::string commit_in(const fs::path& dir, const std::string& version, const std::string& flags = "") {
  std::ofstream(dir / "VERSION") << version << "\n";
  std::ofstream(dir / "flags") << flags << "\n";
  sh("git add -A && git commit -qm " + version, dir);
  return head_of(dir, "HEAD");
}

RunResult git_push(const fs::path& dir, const std::string& refspec = "main") {
  return run({"/usr/bin/git", "push", "origin", refspec}, dir, {}, 120s);
}

json history(Daemon& d, int n) {
  return http_get(d.api_port(), fmt::format("/history?limit={}", n)).json_body()["entries"];
}

}  // namespace

TEST_CASE("git push to a non-bare repository (updateInstead): the pusher sees the stages, a failed "
          "deploy rejects the push and leaves the branch, other branches pass untouched") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  sh("git config receive.denyCurrentBranch updateInstead", repo.dir());
  repo.write_config();
  Daemon d(repo);
  REQUIRE(d.deploy(v1).status == 200);
  auto installed = run({slot_machine_bin(), "hook", "install", "--config", repo.config_path().string()}, repo.dir(),
                       {}, 10s);
  REQUIRE_MESSAGE(installed.exit_code == 0, installed.err);
  CHECK(installed.out.find("pre-receive") != std::string::npos);

  TempDir work;
  const fs::path dev = work.path / "dev";
  clone(repo.dir(), dev);
  const std::string v2 = commit_in(dev, "v2");
  auto pushed = git_push(dev);
  CHECK_MESSAGE(pushed.exit_code == 0, pushed.err);
  CHECK_MESSAGE(pushed.err.find("remote: slot-machine: deploying " + v2.substr(0, 12)) != std::string::npos, pushed.err);
  CHECK_MESSAGE(pushed.err.find("remote:") != std::string::npos, pushed.err);
  CHECK_MESSAGE(pushed.err.find("health") != std::string::npos, pushed.err);  // a stage, as it happened
  json s = d.status();
  CHECK(s["live_commit"] == v2);
  CHECK(head_of(repo.dir()) == v2);
  CHECK(read_file(repo.dir() / "VERSION") == "v2\n");  // updateInstead moved the work tree
  CHECK(http_get(d.public_port(), "/").body.find("hello from v2") != std::string::npos);

  // An app that cannot start: the push is rejected, nothing moves.
  const std::string bad = commit_in(dev, "v3", "--no-such-flag");
  auto rejected = git_push(dev);
  CHECK(rejected.exit_code != 0);
  CHECK_MESSAGE(rejected.err.find("the push of main is rejected") != std::string::npos, rejected.err);
  CHECK(head_of(repo.dir()) == v2);
  CHECK(d.status()["live_commit"] == v2);

  // Another branch: no deploy, the push goes through.
  const size_t before = history(d, 50).size();
  auto other = git_push(dev, "HEAD:refs/heads/feature");
  CHECK_MESSAGE(other.exit_code == 0, other.err);
  CHECK(head_of(repo.dir(), "feature") == bad);
  CHECK(history(d, 50).size() == before);

  // No daemon: the push is rejected, saying so.
  REQUIRE(d.stop() == 0);
  sh("git reset -q --hard HEAD~1 && echo v4 > VERSION && git commit -qam v4", dev);
  auto down = git_push(dev);
  CHECK(down.exit_code != 0);
  CHECK_MESSAGE(down.err.find("cannot reach the daemon") != std::string::npos, down.err);
  CHECK(head_of(repo.dir()) == v2);

  // uninstall removes only its own hook.
  auto removed = run({slot_machine_bin(), "hook", "uninstall"}, repo.dir(), {}, 10s);
  CHECK(removed.exit_code == 0);
  CHECK_FALSE(fs::exists(repo.dir() / ".git" / "hooks" / "pre-receive"));
  std::ofstream(repo.dir() / ".git" / "hooks" / "pre-receive") << "#!/bin/sh\nexit 0\n";
  auto refused = run({slot_machine_bin(), "hook", "install", "--config", repo.config_path().string()}, repo.dir(), {}, 10s);
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("is not slot-machine's") != std::string::npos);
  CHECK(run({slot_machine_bin(), "hook", "uninstall"}, repo.dir(), {}, 10s).exit_code == 1);
}

TEST_CASE("git push to a bare repository the daemon deploys from: the pushed commit is read from "
          "git's quarantine and deployed before the branch moves") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  TempDir server;
  const fs::path bare = server.path / "app.git";
  sh(fmt::format("git clone -q --bare {} {}", repo.dir().string(), bare.string()), server.path);
  repo.write_config();
  Launch how;
  how.repo = bare;
  Daemon d(repo, how);
  REQUIRE(d.deploy(v1).status == 200);
  auto installed = run({slot_machine_bin(), "hook", "install", "--repo", bare.string(), "--config",
                        repo.config_path().string()}, repo.home(), {}, 10s);
  REQUIRE_MESSAGE(installed.exit_code == 0, installed.err);
  CHECK(fs::exists(bare / "hooks" / "pre-receive"));

  TempDir work;
  const fs::path dev = work.path / "dev";
  clone(bare, dev);
  const std::string v2 = commit_in(dev, "v2");
  auto pushed = git_push(dev);
  CHECK_MESSAGE(pushed.exit_code == 0, pushed.err);
  CHECK(d.status()["live_commit"] == v2);
  CHECK(head_of(bare) == v2);
  // The objects left the quarantine with the push: a rollback and a redeploy work.
  REQUIRE(d.rollback().status == 200);
  REQUIRE(d.deploy(v2).status == 200);

  // The API refuses a "quarantine" outside the repository's object store.
  Http outside = http_post(d.api_port(), "/deploy", json{{"commit", v2}, {"quarantine", "/tmp"}}.dump());
  CHECK(outside.status == 400);
  CHECK(outside.body.find("must be a directory inside") != std::string::npos);
  check_clean_stop(d);
}

TEST_CASE("deploy of a full hash the repository lacks fetches origin first") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  TempDir other;
  const fs::path origin = other.path / "origin.git";
  sh(fmt::format("git clone -q --bare {} {}", repo.dir().string(), origin.string()), other.path);
  const fs::path server = other.path / "server";
  clone(origin, server);  // has v1 and an origin
  repo.write_config();
  Launch how;
  how.repo = server;
  Daemon d(repo, how);
  REQUIRE(d.deploy(v1).status == 200);
  // v2 reaches origin, not the daemon's repository.
  const std::string v2 = repo.commit("v2");
  sh(fmt::format("git push -q {} main", origin.string()), repo.dir());
  Http r = d.deploy(v2);
  CHECK_MESSAGE(r.status == 200, r.body);
  CHECK(d.status()["live_commit"] == v2);
  CHECK(d.log().find("fetching remote \"origin\"") != std::string::npos);
  // A hash nowhere: 404 saying it was looked for there too.
  Http missing = d.deploy(std::string(40, 'e'));
  CHECK(missing.status == 404);
  CHECK(missing.body.find("not in remote \\\"origin\\\" either") != std::string::npos);
  check_clean_stop(d);
}

TEST_CASE("cancel while the deploy fetches from a remote that does not answer: a cancelled deploy at stage fetch, "
          "within a second, the live version untouched") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  // A "remote" whose connections are queued and never answered.
  const int port = free_port();
  const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(holder, 16) == 0);
  sh(fmt::format("git remote add origin http://127.0.0.1:{}/app.git", port), repo.dir());
  repo.write_config();
  Daemon d(repo);
  REQUIRE(d.deploy(v1).status == 200);
  Http r;
  std::jthread deploying([&] { r = d.deploy(std::string(40, 'e')); });
  auto s = d.wait_status([](const json& j) { return j["stage"] == "fetch"; }, 10s);
  REQUIRE(s["stage"] == "fetch");
  auto c = d.cli({"cancel"});
  const auto asked = std::chrono::steady_clock::now();
  deploying.join();
  CHECK(std::chrono::steady_clock::now() - asked < 1500ms);
  CHECK_MESSAGE(c.out.find("cancelled the deploy at stage fetch") != std::string::npos, c.out << c.err);
  CHECK(r.status == 500);
  CHECK(r.json_body()["stage"] == "fetch");
  CHECK(r.json_body()["error"].get<std::string>().find("cancelled") != std::string::npos);
  const json last = http_get(d.api_port(), "/history?limit=1").json_body()["entries"][0];
  CHECK(last["result"] == "cancelled");
  CHECK(d.status()["live_commit"] == v1);
  ::close(holder);
  check_clean_stop(d);
}

namespace {
/// `git fsck` of `repo`: exit 0 and no error, invalid, missing or broken object or ref.
void check_fsck_clean(const fs::path& repo, const char* when) {
  auto r = run({"/usr/bin/git", "fsck", "--no-progress"}, repo, {}, 60s);
  const std::string all = r.out + r.err;
  CHECK_MESSAGE(r.exit_code == 0, when << ": " << all);
  for (const char* bad : {"error", "invalid", "missing", "broken"})
    CHECK_MESSAGE(all.find(bad) == std::string::npos, when << ": " << all);
}
}  // namespace

TEST_CASE("a push git would refuse after the hook is rejected before anything is deployed (unstaged or staged "
          "changes, an untracked file the commit would overwrite, the checked-out branch without updateInstead); "
          "git fsck stays clean through accepted and rejected pushes; a slot whose HEAD names a vanished commit "
          "is repaired by the next checkout") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  sh("git config receive.denyCurrentBranch updateInstead", repo.dir());
  repo.write_config();
  Daemon d(repo);
  REQUIRE(d.deploy(v1).status == 200);
  auto installed = run({slot_machine_bin(), "hook", "install", "--config", repo.config_path().string()}, repo.dir(),
                       {}, 10s);
  REQUIRE_MESSAGE(installed.exit_code == 0, installed.err);
  TempDir work;
  const fs::path dev = work.path / "dev";
  clone(repo.dir(), dev);
  std::ofstream(dev / "notes.txt") << "from dev\n";
  const std::string v2 = commit_in(dev, "v2");
  const size_t deploys = history(d, 50).size();

  auto refused = [&](const std::string& says) {
    auto r = git_push(dev);
    CHECK(r.exit_code != 0);
    CHECK_MESSAGE(r.err.find("the push of main is rejected before deploying") != std::string::npos, r.err);
    CHECK_MESSAGE(r.err.find(says) != std::string::npos, r.err);
    CHECK_MESSAGE(r.err.find("deploying " + v2.substr(0, 12)) == std::string::npos, r.err);
    CHECK(head_of(repo.dir()) == v1);
    CHECK(d.status()["live_commit"] == v1);
    CHECK(history(d, 50).size() == deploys);  // nothing ran
  };
  std::ofstream(repo.dir() / "VERSION", std::ios::app) << "edited on the server\n";
  refused("unstaged changes (VERSION)");
  sh("git checkout -q VERSION && echo staged > extra && git add extra", repo.dir());
  refused("staged changes (extra)");
  sh("git rm -q --cached extra && rm extra && echo mine > notes.txt", repo.dir());
  refused("would overwrite files there that git does not track");
  sh("rm notes.txt && git config receive.denyCurrentBranch refuse", repo.dir());
  refused("receive.denyCurrentBranch is \"refuse\"");
  sh("git config receive.denyCurrentBranch updateInstead", repo.dir());
  check_fsck_clean(repo.dir(), "after the refused pushes");

  auto accepted = git_push(dev);
  CHECK_MESSAGE(accepted.exit_code == 0, accepted.err);
  CHECK(d.status()["live_commit"] == v2);
  CHECK(read_file(repo.dir() / "notes.txt") == "from dev\n");

  // A deploy that fails rejects the push; git then deletes the quarantine it came from.
  const std::string bad = commit_in(dev, "v3", "--no-such-flag");
  auto rejected = git_push(dev);
  CHECK(rejected.exit_code != 0);
  CHECK_MESSAGE(rejected.err.find("deploying " + bad.substr(0, 12)) != std::string::npos, rejected.err);
  check_fsck_clean(repo.dir(), "after a push rejected by its failed deploy");
  // The next deploy into that slot works the first time.
  Http again = d.deploy(v1);
  CHECK_MESSAGE(again.status == 200, again.body);
  check_fsck_clean(repo.dir(), "after the next deploy");

  // A slot HEAD naming a commit that is gone (what the rejected pushes of 0.1 left behind):
  // repaired by the next checkout into it, never a failed deploy.
  const std::string idle = d.status()["previous_slot"];
  fs::path admin;
  for (const auto& e : fs::directory_iterator(repo.dir() / ".git" / "worktrees"))
    if (e.path().filename().string().rfind("slot-" + idle + "-", 0) == 0) admin = e.path();
  REQUIRE_FALSE(admin.empty());
  std::ofstream(admin / "HEAD") << std::string(40, 'e') << "\n";
  Http repaired = d.deploy(v2);
  CHECK_MESSAGE(repaired.status == 200, repaired.body);
  CHECK(d.status()["live_commit"] == v2);
  check_fsck_clean(repo.dir(), "after the repair");
  check_clean_stop(d);
}
