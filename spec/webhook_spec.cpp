// Contract §9: webhooks. Signed push deliveries from GitHub, GitLab, Gitea and generic
// senders on the public port deploy the pushed head, fetched from the configured remote
// (a local bare repository stands in for the forge).

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>
#include <sys/stat.h>

#include <fstream>

#include "harness.h"

using namespace spec;

namespace {

const std::string kSecret = "spec-webhook-secret-0123456789";
const std::string kPath = "/.slot-machine/hooks";

std::string hmac_hex(const std::string& body) { return spec::hmac_hex(kSecret, body); }

/// A repository set up as a forge would be: `forge` (bare) is the daemon repository's
/// origin, and `dev` is a clone of it that pushes there.
struct Forge {
  TempDir dir;
  fs::path bare = dir.path / "forge.git", dev = dir.path / "dev";
  explicit Forge(AppRepo& repo) {
    sh(fmt::format("git clone -q --bare {} {}", repo.dir().string(), bare.string()), dir.path);
    sh("git remote add origin " + bare.string(), repo.dir());
    sh(fmt::format("git clone -q {} {} && git -C {} config user.email dev@example.com && git -C {} config user.name dev",
                   bare.string(), dev.string(), dev.string(), dev.string()),
       dir.path);
  }
  /// Commits VERSION=version (plus files) in dev and pushes it to the forge's `branch`.
  std::string push(const std::string& version, const std::string& branch = "main",
                   const std::map<std::string, std::string>& files = {}) {
    std::ofstream(dev / "VERSION") << version << "\n";
    for (const auto& [name, text] : files) std::ofstream(dev / name) << text;
    sh("git add -A && git commit -qm " + version + " && git push -q origin HEAD:" + branch, dev);
    return sh("git rev-parse HEAD", dev).substr(0, 40);
  }
};

json webhook_config(const AppRepo& repo, const json& extra = json::object()) {
  json w = {{"secret_file", secret_file(repo, "webhook.secret", kSecret).string()}};
  w.update(extra);
  return {{"webhooks", w}};
}

std::string push_body(const std::string& commit, const std::string& branch = "main") {
  return json{{"ref", "refs/heads/" + branch}, {"after", commit}, {"before", std::string(40, '1')},
              {"repository", {{"full_name", "owner/app"}}}}
      .dump();
}

Http post(int port, const std::string& path, const std::string& body, const httplib::Headers& headers) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  auto res = c.Post(path, headers, body, "application/json");
  return res ? Http{res->status, res->body} : Http{};
}

/// A GitHub delivery of `body` (event `event`, delivery id `id`), signed with `secret`.
Http github(int port, const std::string& body, const std::string& id, const std::string& event = "push",
            const std::string& signature = "") {
  return post(port, kPath + "/github", body,
              {{"X-GitHub-Event", event},
               {"X-GitHub-Delivery", id},
               {"X-Hub-Signature-256", signature.empty() ? "sha256=" + hmac_hex(body) : signature}});
}

bool has_object(const AppRepo& repo, const std::string& commit) {
  return run({"/usr/bin/git", "cat-file", "-e", commit + "^{commit}"}, repo.dir(), {}, 10s).exit_code == 0;
}

int deploys_of(Daemon& d, const std::string& commit) {
  int n = 0;
  const json history = http_get(d.api_port(), "/history?limit=100").json_body();
  for (const auto& e : history["entries"])
    if (e["action"] == "deploy" && e["commit"] == commit) ++n;
  return n;
}

/// Waits (up to 5 s) until the journal has a deploy of `commit`: /status shows a deploy's
/// commit live and no operation running a moment before its journal entry is written.
void wait_journalled(Daemon& d, const std::string& commit) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (deploys_of(d, commit) == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(20ms);
}

json wait_live(Daemon& d, const std::string& commit, std::chrono::seconds timeout = 60s) {
  return d.wait_status([&](const json& s) { return s["live_commit"] == commit && s["operation"] == ""; }, timeout);
}

/// Whether the daemon's log says `text` within `timeout`: lines written after an
/// operation returns (the receiver logs its deploy once the deploy call is back, which
/// may be after /status already shows the new commit live).
bool log_shows(Daemon& d, const std::string& text, std::chrono::seconds timeout = 5s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (d.log().find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

}  // namespace

TEST_CASE("webhooks: a signed GitHub push deploys the pushed head fetched from the remote, as the first deploy; "
          "bad signatures, pings, other branches and a repeated delivery deploy nothing; other paths reach the app") {
  AppRepo repo;
  repo.commit("v1");
  Forge forge(repo);
  repo.write_config(webhook_config(repo));
  Daemon d(repo, kProxyMode);
  const int port = d.public_port();
  CHECK(http_get(port, "/").status == 503);  // listening from the start, nothing live yet

  const std::string v2 = forge.push("v2");
  REQUIRE_FALSE(has_object(repo, v2));
  // A bad signature: 401, nothing fetched.
  Http forged = github(port, push_body(v2), "bad-1", "push", "sha256=" + std::string(64, '0'));
  CHECK(forged.status == 401);
  CHECK(forged.json_body()["error"].get<std::string>().find("X-Hub-Signature-256") != std::string::npos);
  CHECK(post(port, kPath + "/github", push_body(v2), {{"X-GitHub-Event", "push"}}).status == 401);  // unsigned
  CHECK_FALSE(has_object(repo, v2));
  CHECK(d.log().find("github delivery from 127.0.0.1 refused (401)") != std::string::npos);

  Http accepted = github(port, push_body(v2), "delivery-1");
  CHECK(accepted.status == 202);
  CHECK(accepted.json_body()["accepted"] == v2);
  CHECK(wait_live(d, v2)["live_commit"] == v2);
  CHECK(http_get(port, "/").body.find("hello from v2") != std::string::npos);
  CHECK(log_shows(d, "webhook: deployed " + v2.substr(0, 12)));

  // The same delivery again (a forge's redelivery): answered, not deployed twice.
  Http again = github(port, push_body(v2), "delivery-1");
  CHECK(again.status == 200);
  CHECK(again.json_body()["ignored"].get<std::string>().find("not deployed twice") != std::string::npos);
  Http ping = github(port, R"({"zen":"Keep it logically awesome."})", "ping-1", "ping");
  CHECK(ping.status == 200);
  CHECK(ping.json_body()["ignored"] == "event \"ping\" is not a push");
  const std::string other = forge.push("v3-dev", "dev");
  Http elsewhere = github(port, push_body(other, "dev"), "delivery-2");
  CHECK(elsewhere.status == 200);
  CHECK(elsewhere.json_body()["ignored"] == "a push to refs/heads/dev, not refs/heads/main");
  Http malformed = github(port, "{\"ref\": \"refs/heads/main\", \"after\": 7}", "delivery-3");
  CHECK(malformed.status == 400);

  // The path answers POST only, knows four forges, and reads at most 1 MiB.
  CHECK(http_get(port, kPath + "/github").status == 405);
  Http unknown = post(port, kPath + "/bitbucket", "{}", {});
  CHECK(unknown.status == 404);
  CHECK(unknown.json_body()["error"].get<std::string>().find(kPath + "/gitlab") != std::string::npos);
  CHECK(post(port, kPath + "/github", std::string(2 << 20, 'x'), {}).status == 413);
  // Every other path is the app's, also ones that start like the webhook path.
  Http app = post(port, kPath + "x/github", "{}", {});
  CHECK(app.status == 404);
  CHECK(app.body == "not found\n");  // the app's answer, not the proxy's JSON
  CHECK(http_get(port, "/headers").status == 200);
  d.wait_status([](const json& s) { return s["operation"] == ""; }, 30s);
  CHECK(deploys_of(d, other) == 0);
  check_clean_stop(d);
}

TEST_CASE("webhooks: GitLab (token), Gitea and Forgejo (bare hex) and generic (sha256=) deliveries each deploy "
          "their push") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  Forge forge(repo);
  repo.write_config(webhook_config(repo));
  Daemon d(repo, kProxyMode);
  REQUIRE(d.deploy(v1).status == 200);
  const int port = d.public_port();

  const std::string a = forge.push("from-gitlab");
  CHECK(post(port, kPath + "/gitlab", push_body(a), {{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", "wrong"}})
            .status == 401);
  Http gitlab = post(port, kPath + "/gitlab", push_body(a),
                     {{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", kSecret}, {"X-Gitlab-Event-UUID", "u-1"}});
  CHECK(gitlab.status == 202);
  CHECK(wait_live(d, a)["live_commit"] == a);

  const std::string b = forge.push("from-gitea");
  Http gitea = post(port, kPath + "/gitea", push_body(b),
                    {{"X-Gitea-Event", "push"}, {"X-Gitea-Signature", hmac_hex(push_body(b))}, {"X-Gitea-Delivery", "g-1"}});
  CHECK(gitea.status == 202);
  CHECK(wait_live(d, b)["live_commit"] == b);

  const std::string c = forge.push("from-forgejo");
  Http forgejo = post(port, kPath + "/gitea", push_body(c),
                      {{"X-Forgejo-Event", "push"}, {"X-Forgejo-Signature", hmac_hex(push_body(c))}});
  CHECK(forgejo.status == 202);
  CHECK(wait_live(d, c)["live_commit"] == c);

  const std::string e = forge.push("from-ci");
  CHECK(post(port, kPath + "/generic", push_body(e), {{"X-Slot-Machine-Signature", hmac_hex(push_body(e))}}).status ==
        401);  // the prefix is part of the header
  Http generic = post(port, kPath + "/generic", push_body(e),
                      {{"X-Slot-Machine-Signature", "sha256=" + hmac_hex(push_body(e))}, {"X-Slot-Machine-Delivery", "ci-1"}});
  CHECK(generic.status == 202);
  CHECK(wait_live(d, e)["live_commit"] == e);
  CHECK(http_get(port, "/").body.find("hello from from-ci") != std::string::npos);
  check_clean_stop(d);
}

TEST_CASE("webhooks: pushes that arrive during a deploy coalesce and the newest deploys next; a remote that cannot "
          "be reached fails that deploy with the reason and leaves the live version") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  Forge forge(repo);
  json config = webhook_config(repo);
  config["setup_command"] = "if [ -f slow-setup ]; then sleep 2; fi";
  repo.write_config(config);
  Daemon d(repo, kProxyMode);
  REQUIRE(d.deploy(v1).status == 200);
  const int port = d.public_port();

  const std::string slow = forge.push("slow", "main", {{"slow-setup", "1"}});
  REQUIRE(github(port, push_body(slow), "c-1").status == 202);
  d.wait_status([](const json& s) { return s["stage"] == "setup"; }, 30s);
  sh("git rm -q slow-setup", forge.dev);
  const std::string skipped = forge.push("skipped");
  const std::string newest = forge.push("newest");
  Http queued = github(port, push_body(skipped), "c-2");
  CHECK(queued.status == 202);
  CHECK(queued.json_body()["queued"] == true);
  Http replacing = github(port, push_body(newest), "c-3");
  CHECK(replacing.status == 202);
  CHECK(replacing.json_body()["replaces"] == skipped);
  CHECK(wait_live(d, newest)["live_commit"] == newest);
  wait_journalled(d, newest);
  CHECK(deploys_of(d, slow) == 1);
  CHECK(deploys_of(d, skipped) == 0);
  CHECK(deploys_of(d, newest) == 1);

  // The remote goes away: the delivery is accepted, its deploy fails saying why.
  sh("git remote set-url origin " + (forge.dir.path / "gone.git").string(), repo.dir());
  const std::string lost = forge.push("lost");
  CHECK(github(port, push_body(lost), "c-4").status == 202);
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (d.log().find("the deploy of " + lost.substr(0, 12)) == std::string::npos && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(50ms);
  const std::string log = d.log();
  CHECK_MESSAGE(log.find("webhook: the deploy of " + lost.substr(0, 12)) != std::string::npos, log);
  CHECK_MESSAGE(log.find("fetching it failed") != std::string::npos, log);
  CHECK(d.status()["live_commit"] == newest);
  CHECK(http_get(port, "/").body.find("hello from newest") != std::string::npos);
  check_clean_stop(d);
}

TEST_CASE("webhooks: a config without a secret, with a secret file that is missing or too short, or in direct "
          "mode is refused at start, naming the field; without webhooks the path is the app's") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  auto start = [&](const json& overrides, bool direct) { return start_refused(repo, overrides, direct); };
  const fs::path short_secret = repo.home() / "short.secret";
  std::ofstream(short_secret) << "abc\n";
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"webhooks", {{"branch", "main"}}}}, "\"webhooks.secret_file\" is required"},
      {{{"webhooks", "yes"}}, "\"webhooks\" must be an object"},
      {{{"webhooks", {{"secret_file", "x"}, {"secret", "y"}}}}, "\"webhooks\" does not take \"secret\""},
      {{{"webhooks", {{"secret_file", (repo.home() / "none").string()}}}},
       "\"webhooks.secret_file\": cannot read " + (repo.home() / "none").string()},
      {{{"webhooks", {{"secret_file", short_secret.string()}}}}, "\"webhooks.secret_file\" " + short_secret.string()},
      {{{"webhooks", {{"secret_file", "s"}, {"branch", "a..b"}}}}, "\"webhooks.branch\" must be a branch name"},
      {{{"webhooks", {{"secret_file", "s"}, {"path", "hooks"}}}}, "\"webhooks.path\" must be a path below"},
      {{{"webhooks", {{"secret_file", "s"}, {"remote", "--upload-pack=x"}}}}, "\"webhooks.remote\" must name a git remote"},
      {{{"webhooks", {{"secret_file", "s"}, {"branch", 7}}}}, "\"webhooks.branch\" must be a string"},
  };
  for (const auto& [overrides, says] : cases) {
    auto r = start(overrides, false);
    CHECK_MESSAGE(r.exit_code == 2, overrides.dump() << r.err);
    CHECK_MESSAGE(r.err.find(says) != std::string::npos, r.err);
  }
  auto direct = start(webhook_config(repo), true);
  CHECK(direct.exit_code == 2);
  CHECK(direct.err.find("\"webhooks\" needs proxy mode") != std::string::npos);

  repo.write_config();
  Daemon d(repo, kProxyMode);
  REQUIRE(d.deploy(v1).status == 200);
  Http app = post(d.public_port(), kPath + "/github", push_body(v1), {});
  CHECK(app.status == 404);
  CHECK(app.body == "not found\n");
  check_clean_stop(d);
}
