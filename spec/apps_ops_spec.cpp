// Contract §13: operations of several apps: each app's own lock and queue under load,
// reload (added, removed, rerouted, changed, unchanged), upgrade with every app.

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>

#include <fstream>
#include <thread>

#include "apps_support.h"
#include "service_support.h"

using namespace spec;

TEST_CASE("apps: deploys of two apps run at once; one app's hanging setup, failed deploys, crash loop and log "
          "flood add no failed or slow request to another (under load)") {
  // The shop's setup takes 3 s where its commit has a file `slow`.
  HostedApp blog("blog", {"blog.test"}), shop("shop", {"shop.test"}, {{"setup_command", "if [ -e slow ]; then sleep 3; fi"},
                                                                      {"health_timeout_ms", 1000},
                                                                      {"restart", "on-failure"}});
  AppRepo server;
  server_config(server, {&blog, &shop});
  Daemon d(server, kProxyMode);
  const int port = server.config()["port"];
  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);

  // The shop's slow setup does not hold the blog's deploy back: each app has its own
  // operation lock and queue. The blog's deploy ends while the shop's setup still runs
  // (a bound on wall time would be the machine's speed, not the property).
  const std::string b2 = blog.repo.commit("v2 of blog");
  const std::string slow_shop = shop.repo.commit("v1 of shop", "", {{"slow", "1"}});
  std::thread slow([&] { CHECK(deploy_app(d, "shop", slow_shop).status == 200); });
  CHECK(eventually([&] { return app_status(d, "shop")["stage"] == "setup"; }, 5s));
  CHECK(deploy_app(d, "blog", b2).status == 200);
  const json shop_now = app_status(d, "shop");
  CHECK_MESSAGE(shop_now["operation"] == "deploy", shop_now);
  CHECK_MESSAGE(shop_now["stage"] == "setup", shop_now);
  slow.join();

  Load load(port, 3, true, "blog.test");
  std::this_thread::sleep_for(200ms);
  // The shop's troubles: a deploy whose app never becomes healthy, one whose app exits
  // at once, its live app crashing (restarted: on-failure) and flooding its log.
  const std::string unhealthy = shop.repo.commit("v2 of shop", "--start-unhealthy");
  const std::string dies = shop.repo.commit("v3 of shop", "--no-such-flag");
  CHECK(deploy_app(d, "shop", unhealthy).status == 500);
  CHECK(deploy_app(d, "shop", dies).status == 500);
  const int shop_port = app_status(d, "shop")["live_port"];
  http_post(shop_port, "/control/log?line=" + std::string(200, 'x') + "&times=20000", "");
  for (int i = 0; i < 3; ++i) {
    const int pid = app_status(d, "shop")["live_pid"];
    http_post(app_status(d, "shop")["live_port"], "/control/crash", "");
    CHECK(eventually([&] {
      const json s = app_status(d, "shop");
      return s["live_pid"] != pid && s["healthy"] == true;
    }, 10s));
  }
  load.finish();
  CHECK_MESSAGE(load.failed() == 0, load.failed() << " failed of " << load.ok() << ": " << load.first_failure());
  CHECK(load.ok() > 50);
  CHECK_MESSAGE(load.slowest_ms() < 1000, load.slowest_ms() << " ms");
  CHECK(get_host(port, "blog.test").body.find("v2 of blog") != std::string::npos);
  CHECK(get_host(port, "shop.test").body.find("v1 of shop") != std::string::npos);
  CHECK(shop_port > 0);
}

TEST_CASE("apps: reload adds, removes and reroutes apps; the unchanged keep their processes and lose no request; "
          "a bad config changes nothing") {
  HostedApp blog("blog", {"blog.test"}), shop("shop", {"shop.test"}), wiki("wiki", {"wiki.test"});
  AppRepo server;
  server_config(server, {&blog, &shop});
  Daemon d(server, kProxyMode);
  const int port = server.config()["port"];
  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);
  REQUIRE(deploy_app(d, "shop", shop.commits[0]).status == 200);
  const int blog_pid = app_status(d, "blog")["live_pid"];
  const int shop_pid = app_status(d, "shop")["live_pid"];
  Load load(port, 3, true, "blog.test");
  std::this_thread::sleep_for(200ms);

  // Add wiki, remove shop, give blog a second host: POST /reload.
  server_config(server, {&blog, &wiki}, {{"apps", {{"blog", {{"hosts", {"blog.test", "www.blog.test"}}}}}}});
  Http h = http_post(d.api_port(), "/reload", "{}");
  REQUIRE_MESSAGE(h.status == 200, h.body);
  const json changes = h.json_body()["apps"];
  CHECK(changes["added"] == json{"wiki"});
  CHECK(changes["removed"] == json{"shop"});
  CHECK(changes["rerouted"] == json{"blog"});
  CHECK(get_host(port, "www.blog.test").body.find("v1 of blog") != std::string::npos);
  CHECK(get_host(port, "shop.test").status == 404);
  CHECK(kill(shop_pid, 0) != 0);  // drained and stopped, no orphan
  CHECK(get_host(port, "wiki.test").status == 503);
  CHECK(deploy_app(d, "wiki", wiki.commits[0]).status == 200);
  CHECK(get_host(port, "wiki.test").body.find("v1 of wiki") != std::string::npos);

  // An invalid config: 400 (the CLI: exit 2) and nothing changes.
  std::ofstream(server.config_path()) << R"({"apps": {"wiki": {"repo": "/x"}}})";
  h = http_post(d.api_port(), "/reload", "{}");
  CHECK(h.status == 400);
  CHECK_MESSAGE(h.json_body()["error"].get<std::string>().find("\"hosts\" is required") != std::string::npos, h.body);
  RunResult r = cli_in(d, server.home(), {"reload"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("nothing changed") != std::string::npos);
  CHECK(http_get(d.api_port(), "/apps").json_body()["apps"].size() == 2);

  // The app's own file changed: a new App adopts its process (same pid). SIGHUP reloads.
  server_config(server, {&blog, &wiki});
  json own = blog.repo.config();
  own["drain_timeout_ms"] = 1500;
  std::ofstream(blog.repo.config_path()) << own.dump();
  kill(d.pid(), SIGHUP);
  CHECK(eventually([&] { return d.log().find("config reloaded") != std::string::npos; }, 10s));
  CHECK(d.log().find("1 changed") != std::string::npos);
  load.finish();
  CHECK_MESSAGE(load.failed() == 0, load.failed() << " failed of " << load.ok() << ": " << load.first_failure());
  CHECK(load.ok() > 50);
  CHECK(app_status(d, "blog")["live_pid"] == blog_pid);
  CHECK(app_status(d, "blog")["healthy"] == true);
  CHECK(get_host(port, "www.blog.test").status == 404);
  // `apps add` / `apps remove` edit the server config in place and reload.
  std::vector<std::string> add{"apps", "add", "shop", "--repo", shop.repo.dir().string(), "--host", "shop.test",
                               "--app-config", shop.repo.config_path().string(), "--config",
                               server.config_path().string()};
  if (geteuid() == 0) add.insert(add.end(), {"--user", "root"});
  r = cli_in(d, server.home(), add);
  CHECK_MESSAGE(r.exit_code == 0, r.out << r.err);
  const json saved = json::parse(read_file(server.config_path()));
  CHECK(saved["apps"].contains("shop"));
  CHECK(saved["port"] == port);  // the rest kept
  CHECK(get_host(port, "shop.test").body.find("v1 of shop") != std::string::npos);  // its data dir, adopted
  r = cli_in(d, server.home(), {"apps", "remove", "wiki", "--config", server.config_path().string()});
  CHECK_MESSAGE(r.exit_code == 0, r.out << r.err);
  CHECK(get_host(port, "wiki.test").status == 404);
  r = cli_in(d, server.home(), {"apps", "add", "Bad", "--repo", "/x", "--host", "x.test", "--config",
                                server.config_path().string()});
  CHECK(r.exit_code == 2);
  CHECK(json::parse(read_file(server.config_path())) == json::parse(read_file(server.config_path())));
  r = cli_in(d, server.home(), {"apps"});
  CHECK(r.out.find("shop") != std::string::npos);
  CHECK(r.out.find("wiki") == std::string::npos);

  // The blog's own file made invalid: nothing can adopt its process, which is drained and
  // stopped (no orphan); the blog is listed with the error.
  std::ofstream(blog.repo.config_path()) << R"({"start_command": ""})";
  REQUIRE(http_post(d.api_port(), "/reload", "{}").status == 200);
  CHECK(eventually([&] { return kill(blog_pid, 0) != 0; }, 10s));
  CHECK(http_get(d.api_port(), "/apps/blog/status").status == 503);
  CHECK(get_host(port, "blog.test").status == 404);
}

TEST_CASE("apps: upgrade hands every app to the new daemon (same pids), under load") {
  TwoApps two;
  Daemon& d = two.d;
  const int port = two.port;
  const int blog_pid = app_status(d, "blog")["live_pid"];
  const int shop_pid = app_status(d, "shop")["live_pid"];
  Load a(port, 2, true, "blog.test"), b(port, 2, false, "shop.test");
  std::this_thread::sleep_for(200ms);
  const Http h = upgrade(d);
  REQUIRE_MESSAGE(h.status == 200, h.body);
  std::this_thread::sleep_for(200ms);
  a.finish();
  b.finish();
  CHECK_MESSAGE(a.failed() + b.failed() == 0, a.first_failure() << b.first_failure());
  CHECK(a.ok() > 20);
  CHECK(b.ok() > 20);
  CHECK(app_status(d, "blog")["live_pid"] == blog_pid);
  CHECK(app_status(d, "shop")["live_pid"] == shop_pid);
  CHECK(app_status(d, "shop")["daemon_pid"] == d.pid());
  const std::string v2 = two.shop.repo.commit("v2 of shop");
  CHECK(deploy_app(d, "shop", v2).status == 200);
}
