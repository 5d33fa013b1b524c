// Contract §11: the dashboard. The page and its endpoints over HTTP here; the page
// itself in headless Chromium (spec/browser/dashboard.py, Selenium).

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>
#include <sys/stat.h>

#include <fstream>

#include "harness.h"

using namespace spec;

namespace {

const std::string kToken = "dashboard-token-0123456789abcdef";

fs::path write_token(AppRepo& repo) { return secret_file(repo, "token", kToken); }

/// The browser script in `mode` with `args`: fails the test with its output unless it
/// exits 0 (3 minutes at most).
void browser(const std::string& mode, const std::vector<std::string>& args, const AppRepo& repo) {
  std::vector<std::string> argv{"/usr/bin/python3", std::string(SPEC_SOURCE_DIR) + "/browser/dashboard.py", mode};
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> env;
  if (const char* dir = std::getenv("SM_SCREENSHOTS")) env["SM_SCREENSHOTS"] = dir;
  const auto r = run(argv, repo.home(), env, std::chrono::minutes(3));
  INFO("browser output:\n" << r.out << r.err);
  CHECK(r.exit_code == 0);
}

httplib::Headers headers(std::initializer_list<std::pair<const std::string, std::string>> h) { return h; }

}  // namespace

TEST_CASE("dashboard: served from the binary with a strict CSP; revisions, commits, paged history, SSE events") {
  Site site({{"v1"}});
  Daemon& d = site.d;
  const std::string v1 = site.commits[0];
  httplib::Client c("127.0.0.1", d.api_port());
  c.set_read_timeout(10, 0);

  auto redirect = c.Get("/ui");
  REQUIRE(redirect);
  CHECK(redirect->status == 308);
  CHECK(redirect->get_header_value("Location") == "/ui/");
  auto page = c.Get("/ui/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->get_header_value("Content-Type") == "text/html; charset=utf-8");
  CHECK(page->get_header_value("Content-Security-Policy").find("default-src 'none'") != std::string::npos);
  CHECK(page->body.find("<script src=\"/ui/app.js\"") != std::string::npos);
  CHECK(page->body.find("http") == std::string::npos);  // nothing fetched from elsewhere
  for (const char* asset : {"/ui/app.js", "/ui/style.css"}) {
    auto a = c.Get(asset);
    REQUIRE(a);
    CHECK(a->status == 200);
    CHECK(a->body.find("https://") == std::string::npos);
  }
  auto missing = c.Get("/ui/nothing.js");
  REQUIRE(missing);
  CHECK(missing->status == 404);

  REQUIRE(d.deploy(v1).status == 200);
  auto revs = c.Get("/revisions");
  REQUIRE(revs);
  REQUIRE(revs->status == 200);
  const json r = json::parse(revs->body);
  CHECK(r["branches"].size() >= 1);
  REQUIRE(r["recent"].size() == 1);
  CHECK(r["recent"][0]["hash"] == v1);
  CHECK(r["recent"][0]["subject"] == "v1");
  auto commit = c.Get("/commits/" + v1.substr(0, 10));
  REQUIRE(commit);
  CHECK(commit->status == 200);
  CHECK(json::parse(commit->body)["hash"] == v1);
  auto unknown = c.Get("/commits/no-such-thing");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);

  // History pages: skip counts from the newest.
  // The same commit again, forced (else nothing is done): into the other slot.
  REQUIRE(http_post(d.api_port(), "/deploy", json{{"commit", v1}, {"force", true}}.dump()).status == 200);
  auto page1 = json::parse(c.Get("/history?limit=1")->body)["entries"];
  auto page2 = json::parse(c.Get("/history?limit=1&skip=1")->body)["entries"];
  REQUIRE(page1.size() == 1);
  REQUIRE(page2.size() == 1);
  CHECK(page1[0]["slot"] == "b");
  CHECK(page2[0]["slot"] == "a");
  CHECK(json::parse(c.Get("/history?skip=2")->body)["entries"].empty());
  CHECK(c.Get("/history?skip=-1")->status == 400);

  // The event stream: a deploy's stages as Server-Sent Events.
  std::string seen;
  std::atomic<bool> done{false};
  std::jthread reader([&] {
    httplib::Client sse("127.0.0.1", d.api_port());
    sse.set_read_timeout(20, 0);
    sse.Get("/events", [&](const char* data, size_t n) {
      seen.append(data, n);
      return !done && seen.find("event: finished") == std::string::npos;
    });
  });
  struct StopReading {  // before the reader is joined, also when a REQUIRE below fails
    std::atomic<bool>& done;
    ~StopReading() { done = true; }
  } stop_reading{done};
  std::this_thread::sleep_for(300ms);
  REQUIRE(d.rollback().status == 200);
  reader.join();
  done = true;
  CHECK(seen.find("event: stage\ndata: {") != std::string::npos);
  CHECK(seen.find("\"operation\":\"rollback\"") != std::string::npos);
  CHECK(seen.find("event: finished\ndata: {") != std::string::npos);
}

TEST_CASE("dashboard: event streams that hang up give their places back (4 at most)") {
  Site site({{"v1"}});
  Daemon& d = site.d;
  for (int i = 0; i < 10; ++i) {  // nothing happens meanwhile: each must be noticed without an event
    CAPTURE(i);
    const auto t0 = std::chrono::steady_clock::now();
    int status = 503;
    while (status == 503 && std::chrono::steady_clock::now() - t0 < 5s) {
      status = get_first_bytes(d.api_port(), "/events").status;  // the first bytes: an idle comment
      if (status == 503) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(status == 200);
  }
}

TEST_CASE("dashboard: a POST from another origin is refused (403), also by a daemon without a token") {
  Site site({{"v1"}});
  Daemon& d = site.d;
  const std::string v1 = site.commits[0];
  httplib::Client c("127.0.0.1", d.api_port());
  auto forged = c.Post("/deploy", headers({{"Origin", "http://evil.example"}}), json{{"commit", v1}}.dump(),
                       "text/plain");
  REQUIRE(forged);
  CHECK(forged->status == 403);
  CHECK(forged->body.find("cross-origin request refused") != std::string::npos);
  CHECK(d.status()["live_commit"] == "");
  auto same = c.Post("/deploy", headers({{"Origin", fmt::format("http://127.0.0.1:{}", d.api_port())}}),
                     json{{"commit", v1}}.dump(), "application/json");
  REQUIRE(same);
  CHECK(same->status == 200);
}

TEST_CASE("dashboard login: the token gives an HttpOnly SameSite=Strict session; its POSTs need the CSRF "
          "token; forged and logged-out sessions get 401") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  repo.write_config({{"api_token_file", write_token(repo).string()}});
  Daemon d(repo);
  httplib::Client c("127.0.0.1", d.api_port());
  CHECK(c.Get("/ui/")->status == 200);  // the page and its login are open
  auto session = json::parse(c.Get("/ui/session")->body);
  CHECK(session["token_required"] == true);
  CHECK(session["logged_in"] == false);
  CHECK(c.Get("/status")->status == 401);
  CHECK(c.Get("/events")->status == 401);

  auto wrong = c.Post("/ui/login", json{{"token", kToken + "x"}}.dump(), "application/json");
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  CHECK(wrong->get_header_value("Set-Cookie").empty());
  CHECK(c.Post("/ui/login", "not json", "application/json")->status == 400);
  auto ok = c.Post("/ui/login", json{{"token", kToken}}.dump(), "application/json");
  REQUIRE(ok);
  REQUIRE(ok->status == 200);
  const std::string set_cookie = ok->get_header_value("Set-Cookie");
  CHECK(set_cookie.find("HttpOnly") != std::string::npos);
  CHECK(set_cookie.find("SameSite=Strict") != std::string::npos);
  CHECK(set_cookie.find("Secure") == std::string::npos);  // plain HTTP here
  const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  const std::string csrf = json::parse(ok->body)["csrf"];

  CHECK(c.Get("/status", headers({{"Cookie", cookie}}))->status == 200);
  // A POST with the cookie alone (what a forged cross-site form sends): 403, nothing done.
  auto no_csrf = c.Post("/deploy", headers({{"Cookie", cookie}}), json{{"commit", v1}}.dump(), "application/json");
  REQUIRE(no_csrf);
  CHECK(no_csrf->status == 403);
  auto bad_csrf = c.Post("/deploy", headers({{"Cookie", cookie}, {"X-CSRF-Token", std::string(64, 'a')}}),
                         json{{"commit", v1}}.dump(), "application/json");
  CHECK(bad_csrf->status == 403);
  auto status = c.Get("/status", headers({{"Authorization", "Bearer " + kToken}}));
  REQUIRE(status);
  CHECK(json::parse(status->body)["live_commit"] == "");
  auto cross = c.Post("/deploy", headers({{"Cookie", cookie}, {"X-CSRF-Token", csrf}, {"Origin", "http://evil.example"}}),
                      json{{"commit", v1}}.dump(), "application/json");
  CHECK(cross->status == 403);
  auto good = c.Post("/deploy", headers({{"Cookie", cookie}, {"X-CSRF-Token", csrf}}), json{{"commit", v1}}.dump(),
                     "application/json");
  REQUIRE(good);
  CHECK(good->status == 200);

  // A forged session id, and one logged out.
  CHECK(c.Get("/status", headers({{"Cookie", "sm_session=" + std::string(64, 'f')}}))->status == 401);
  CHECK(c.Post("/ui/logout", headers({{"Cookie", cookie}, {"X-CSRF-Token", csrf}}), "", "application/json")->status == 200);
  CHECK(c.Get("/status", headers({{"Cookie", cookie}}))->status == 401);
  // The bearer token works as before.
  CHECK(c.Get("/status", headers({{"Authorization", "Bearer " + kToken}}))->status == 200);
  check_clean_stop(d);
}

TEST_CASE("dashboard in Chromium: live commit, a CLI deploy's stages as they happen, rollback after confirming, "
          "an unknown revision's 404, two tabs deploying at once (one 409), a phone-sized screen") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  const std::string v2 = repo.commit("v2", "--boot-delay 1");  // a health stage long enough to see
  repo.write_config();
  Daemon d(repo, kProxyMode);
  REQUIRE(d.deploy(v1).status == 200);
  http_get(d.public_port(), "/");
  browser("main", {fmt::format("http://127.0.0.1:{}/ui/", d.api_port()), slot_machine_bin(),
                   std::to_string(d.api_port()), repo.dir().string(), v1, v2},
          repo);
  CHECK(d.status()["live_commit"] == v2);
  CHECK(d.status()["maintenance"].is_null());  // turned on and off from the page
  check_clean_stop(d);
}

TEST_CASE("Chromium through the proxy: the app's page arrives compressed, an EventSource gets each event as sent") {
  Site site({{"v1"}}, json::object(), kProxyMode);
  REQUIRE(site.d.deploy(site.commits[0]).status == 200);
  browser("compressed", {fmt::format("http://127.0.0.1:{}", site.d.public_port())}, site.repo);
}

TEST_CASE("dashboard in Chromium: log in with the token, the cookie the script cannot read, log out") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  repo.write_config({{"api_token_file", write_token(repo).string()}});
  Daemon d(repo);
  httplib::Client c("127.0.0.1", d.api_port());
  c.set_read_timeout(30, 0);
  auto deployed = c.Post("/deploy", headers({{"Authorization", "Bearer " + kToken}}), json{{"commit", v1}}.dump(),
                         "application/json");
  REQUIRE(deployed);
  REQUIRE(deployed->status == 200);
  browser("login", {fmt::format("http://127.0.0.1:{}/ui/", d.api_port()), kToken, v1}, repo);
  check_clean_stop(d);
}

TEST_CASE("dashboard: the first state is in the HTML the server sends (live, previous, Roll back disabled with "
          "nothing to roll back to), but not to a visitor who must log in; /favicon.ico is served") {
  Site site({{"v1"}, {"v2 subject"}});
  Daemon& d = site.d;
  const std::string v1 = site.commits[0], v2 = site.commits[1];
  REQUIRE(d.deploy(v1).status == 200);
  httplib::Client c("127.0.0.1", d.api_port());
  auto one = c.Get("/ui/");
  REQUIRE(one);
  CHECK(one->body.find("@@") == std::string::npos);  // every placeholder filled
  CHECK(one->body.find("<div id=\"dashboard\">") != std::string::npos);
  CHECK(one->body.find(v1.substr(0, 12)) != std::string::npos);
  CHECK(one->body.find("id=\"rollback\" disabled") != std::string::npos);
  CHECK(one->body.find("Nothing to roll back to yet.") != std::string::npos);
  REQUIRE(d.deploy(v2).status == 200);
  auto two = c.Get("/ui/");
  CHECK(two->body.find("v2 subject") != std::string::npos);
  CHECK(two->body.find("<span class=\"good\">healthy</span>") != std::string::npos);
  CHECK(two->body.find("id=\"rollback\">") != std::string::npos);  // enabled
  auto icon = c.Get("/favicon.ico");
  REQUIRE(icon);
  CHECK(icon->status == 200);
  CHECK(icon->get_header_value("Content-Type") == "image/svg+xml");
  check_clean_stop(d);

  AppRepo locked;
  const std::string l1 = locked.commit("v1");
  locked.write_config({{"api_token_file", write_token(locked).string()}});
  Daemon t(locked);
  httplib::Client ct("127.0.0.1", t.api_port());
  REQUIRE(ct.Post("/deploy", headers({{"Authorization", "Bearer " + kToken}}), json{{"commit", l1}}.dump(),
                  "application/json")->status == 200);
  auto anonymous = ct.Get("/ui/");
  REQUIRE(anonymous);
  CHECK(anonymous->status == 200);
  CHECK(anonymous->body.find(l1.substr(0, 12)) == std::string::npos);
  CHECK(anonymous->body.find("<div id=\"dashboard\" hidden>") != std::string::npos);
  CHECK(ct.Get("/favicon.ico")->status == 200);  // open, like the page itself
  check_clean_stop(t);
}
