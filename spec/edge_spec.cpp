// Contract §8, the parts that exist: API tokens, remote daemons (--remote, --cacert,
// deploy to several in order) and the API over HTTPS.

#include <sys/stat.h>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>

#include <fstream>

#include "harness.h"

using namespace spec;

namespace {

const std::string kToken = "spec-token-0123456789abcdef";

/// Writes `token` to home/token (mode 0600); returns its path.
fs::path write_token(AppRepo& repo, const std::string& token = kToken) { return secret_file(repo, "token", token); }

/// An API request with an optional Authorization header.
httplib::Result api(int port, const std::string& method, const std::string& path,
                    const std::string& auth = "") {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  httplib::Headers h;
  if (!auth.empty()) h.emplace("Authorization", auth);
  if (method == "GET") return c.Get(path, h);
  return c.Post(path, h, method == "POST" ? "{}" : method, "application/json");
}

RunResult start_with(AppRepo& repo, const std::map<std::string, std::string>& env = {}) {
  return run({slot_machine_bin(), "start", "--config", repo.config_path().string(), "--repo",
              repo.dir().string(), "--data", repo.data_dir().string(), "--no-proxy"},
             repo.home(), env, 10s);
}


}  // namespace

TEST_CASE("API token: every call but GET / needs it (401, nothing done); the CLI sends the "
          "config's api_token_file") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  repo.write_config({{"api_token_file", write_token(repo).string()}});
  Daemon d(repo);
  const int port = d.api_port();

  auto open = api(port, "GET", "/");
  REQUIRE(open);
  CHECK(open->status == 200);
  for (const std::string& auth : std::vector<std::string>{"", "Bearer wrong-token-0123456789", "Bearer " + kToken + "x",
                                 "Basic " + kToken, kToken}) {
    auto r = api(port, "GET", "/status", auth);
    REQUIRE(r);
    CHECK_MESSAGE(r->status == 401, auth);
    CHECK(r->get_header_value("WWW-Authenticate").find("Bearer") == 0);
    CHECK(json::parse(r->body)["error"].get<std::string>().find("token") != std::string::npos);
  }
  auto unknown = api(port, "GET", "/no-such-path");
  CHECK(unknown->status == 401);  // not 404: nothing is told without the token
  auto refused = api(port, "POST", "/deploy");
  CHECK(refused->status == 401);
  auto ok = api(port, "GET", "/status", "Bearer " + kToken);
  REQUIRE(ok);
  CHECK(ok->status == 200);
  CHECK(json::parse(ok->body)["live_commit"] == "");  // the refused deploy did nothing

  // The CLI in the config's directory finds api_port and the token file there.
  auto deployed = run({slot_machine_bin(), "deploy", v1}, repo.home());
  CHECK_MESSAGE(deployed.exit_code == 0, deployed.err);
  auto status = run({slot_machine_bin(), "status", "--json"}, repo.home());
  CHECK(status.exit_code == 0);
  CHECK(json::parse(status.out)["live_commit"] == v1);
  // $SLOT_MACHINE_API_TOKEN beats the file: a wrong one is refused, exit 1, saying so.
  auto wrong = run({slot_machine_bin(), "status"}, repo.home(),
                   {{"SLOT_MACHINE_API_TOKEN", "wrong-token-0123456789"}});
  CHECK(wrong.exit_code == 1);
  CHECK_MESSAGE(wrong.err.find("HTTP 401") != std::string::npos, wrong.err);
  CHECK_MESSAGE(wrong.err.find("the API token is wrong") != std::string::npos, wrong.err);
  auto short_token = run({slot_machine_bin(), "status"}, repo.home(), {{"SLOT_MACHINE_API_TOKEN", "abc"}});
  CHECK(short_token.exit_code == 2);
  CHECK(short_token.err.find("16-4096") != std::string::npos);
  check_clean_stop(d);
}

TEST_CASE("API token from the daemon's environment: the apps never see it") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  repo.write_config({{"api_bind", "0.0.0.0"}});  // allowed: there is a token
  Launch how;
  how.env["SLOT_MACHINE_API_TOKEN"] = kToken;
  Daemon d(repo, how);
  auto r = api(d.api_port(), "GET", "/status");
  CHECK(r->status == 401);
  httplib::Client c("127.0.0.1", d.api_port());
  c.set_bearer_token_auth(kToken);
  c.set_read_timeout(60, 0);
  auto dep = c.Post("/deploy", json{{"commit", v1}}.dump(), "application/json");
  REQUIRE(dep);
  REQUIRE(dep->status == 200);
  const int app = json::parse(c.Get("/status")->body)["live_pid"];
  CHECK(read_file(fmt::format("/proc/{}/environ", app)).find("SLOT_MACHINE_API_TOKEN") == std::string::npos);
  check_clean_stop(d);
}

TEST_CASE("a daemon with a reachable API and no token, a missing or unusable token file, bad "
          "api_tls, or \"tls\" refuses to start (exit 2, naming what)") {
  AppRepo repo;
  repo.commit("v1");
  struct Case {
    json config;
    std::string says;
  };
  const auto [crt, key] = self_signed_cert(repo, "api");
  const auto [other_crt, other_key] = self_signed_cert(repo, "other");
  std::ofstream(repo.home() / "short") << "abc\n";
  const std::vector<Case> cases = {
      {{{"api_bind", "0.0.0.0"}}, "\"api_bind\" is 0.0.0.0, reachable from other machines, but the API has no token"},
      {{{"api_token_file", (repo.home() / "missing").string()}}, (repo.home() / "missing").string()},
      {{{"api_token_file", (repo.home() / "short").string()}}, "is 3 characters; it must be 16-4096"},
      {{{"api_tls", {{"cert", crt.string()}, {"key", other_key.string()}}}}, "is not the key of the certificate"},
      {{{"api_tls", {{"cert", (repo.home() / "nope.crt").string()}, {"key", key.string()}}}}, "\"api_tls.cert\": cannot read"},
      {{{"api_tls", {{"cert", crt.string()}}}}, "\"api_tls.key\" must be the path of a PEM file"},
      {{{"api_tls", "yes"}}, "\"api_tls\" must be an object"},
      {{{"tls", {{"port", 8443}, {"acme", {{"domains", {"*.example.com"}}}}}}}, "\"tls.acme.domains\" entry \"*.example.com\": wildcards need a DNS-01 challenge"},
  };
  for (const auto& c : cases) {
    repo.write_config(c.config);
    auto r = start_with(repo);
    CHECK_MESSAGE(r.exit_code == 2, c.config.dump() << "\n" << r.err);
    CHECK_MESSAGE(r.err.find(c.says) != std::string::npos, c.config.dump() << "\n" << r.err);
  }
}

TEST_CASE("--remote: deploy to several daemons in order, stopping at the first failure and naming it") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  const std::string v2 = repo.commit("v2");
  // Three daemons, each with its own repository holding the same commits (fetched).
  AppRepo repo_b, repo_c;
  for (AppRepo* r : {&repo_b, &repo_c}) sh("git fetch -q " + repo.dir().string() + " main", r->dir());
  repo.write_config();
  repo_b.write_config();
  repo_c.write_config({{"health_endpoint", "/never-healthy"}, {"health_timeout_ms", 500}});
  Daemon a(repo), b(repo_b), c(repo_c);
  const std::string url_a = fmt::format("http://127.0.0.1:{}", a.api_port());
  const std::string url_b = fmt::format("http://127.0.0.1:{}/", b.api_port());
  const std::string url_c = fmt::format("http://127.0.0.1:{}", c.api_port());

  auto both = run({slot_machine_bin(), "deploy", v1, "--remote", url_a, "--remote", url_b}, repo.dir());
  CHECK_MESSAGE(both.exit_code == 0, both.err);
  CHECK(both.out.find("==> " + url_a + " (1 of 2)") != std::string::npos);
  CHECK(a.status()["live_commit"] == v1);
  CHECK(b.status()["live_commit"] == v1);

  // c never gets healthy: the deploy stops there; a got v2, b (after c) was not touched.
  auto stopped = run({slot_machine_bin(), "deploy", v2, "--remote", url_a, "--remote", url_c,
                      "--remote", url_b}, repo.dir());
  CHECK(stopped.exit_code == 1);
  CHECK_MESSAGE(stopped.err.find("deploy stopped at " + url_c + ": it failed there; " + v2 +
                                 " is live on " + url_a + "; not deployed to " +
                                 url_b.substr(0, url_b.size() - 1)) != std::string::npos,
                stopped.err);
  CHECK_MESSAGE(stopped.err.find("on " + url_c) != std::string::npos, stopped.err);
  CHECK(a.status()["live_commit"] == v2);
  CHECK(b.status()["live_commit"] == v1);

  // Unreachable remote: said with the URL; bad URLs and --api-port with --remote are usage errors.
  auto down = run({slot_machine_bin(), "status", "--remote", "http://127.0.0.1:1"}, repo.dir());
  CHECK(down.exit_code == 1);
  CHECK(down.err.find("cannot reach the daemon at http://127.0.0.1:1") != std::string::npos);
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"status", "--remote", "127.0.0.1:9100"},
        {"status", "--remote", "http://h:1/path"},
        {"status", "--remote", url_a, "--api-port", "9100"},
        {"rollback", "--remote", url_a, "--remote", url_b}}) {
    std::vector<std::string> argv = {slot_machine_bin()};
    argv.insert(argv.end(), bad.begin(), bad.end());
    auto r = run(argv, repo.dir());
    CHECK_MESSAGE(r.exit_code == 2, bad[1] << " " << bad[2] << ": " << r.err);
  }
  check_clean_stop(a);
  check_clean_stop(b);
  check_clean_stop(c);
}

TEST_CASE("the API over HTTPS (api_tls): --remote https:// with --cacert; plain HTTP and "
          "untrusted certificates fail with what to do; a dashboard login gets a Secure cookie") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  const auto [crt, key] = self_signed_cert(repo, "api");
  repo.write_config({{"api_tls", {{"cert", crt.string()}, {"key", key.string()}}},
                     {"api_token_file", write_token(repo).string()}});
  Launch how;
  how.https_api = true;
  Daemon d(repo, how);
  const std::string url = fmt::format("https://127.0.0.1:{}", d.api_port());

  auto trusted = run({slot_machine_bin(), "deploy", v1, "--remote", url, "--cacert", crt.string()},
                     repo.dir(), {{"SLOT_MACHINE_API_TOKEN", kToken}});
  CHECK_MESSAGE(trusted.exit_code == 0, trusted.err);
  // In the config's directory the CLI speaks HTTPS to localhost and trusts the api_tls cert.
  auto local = run({slot_machine_bin(), "status", "--json"}, repo.home());
  CHECK_MESSAGE(local.exit_code == 0, local.err);
  CHECK(json::parse(local.out)["live_commit"] == v1);

  auto untrusted = run({slot_machine_bin(), "status", "--remote", url}, repo.dir(),
                       {{"SLOT_MACHINE_API_TOKEN", kToken}});
  CHECK(untrusted.exit_code == 1);
  CHECK_MESSAGE(untrusted.err.find("--cacert") != std::string::npos, untrusted.err);
  auto plain = run({slot_machine_bin(), "status", "--remote", fmt::format("http://127.0.0.1:{}", d.api_port())},
                   repo.dir(), {{"SLOT_MACHINE_API_TOKEN", kToken}});
  CHECK(plain.exit_code == 1);
  // Garbage instead of a handshake: the connection is closed, the daemon serves on.
  const std::string answer = raw_exchange(d.api_port(), "GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(answer.find("live_commit") == std::string::npos);
  auto again = run({slot_machine_bin(), "status"}, repo.home());
  CHECK(again.exit_code == 0);
  // The dashboard's session cookie over HTTPS is Secure: never sent over plain HTTP.
  httplib::SSLClient tls("127.0.0.1", d.api_port());
  tls.enable_server_certificate_verification(false);  // the CLI checks above cover trust
  auto login = tls.Post("/ui/login", json{{"token", kToken}}.dump(), "application/json");
  REQUIRE(login);
  CHECK(login->status == 200);
  const std::string cookie = login->get_header_value("Set-Cookie");
  CHECK(cookie.find("; Secure") != std::string::npos);
  CHECK(cookie.find("HttpOnly") != std::string::npos);
  check_clean_stop(d);
}
