// Contract §13: several apps behind one port, routed by host name; the API under
// /apps/NAME/, the CLI's --app, reload, upgrade, isolation under load.

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>

#include <fstream>
#include <thread>

#include "harness.h"
#include "service_support.h"

using namespace spec;

namespace {

/// An app of a server: its repository, with testapp commits, and its own file (written
/// by AppRepo::write_config: the ports there are ignored by the server).
struct HostedApp {
  HostedApp(const std::string& name, std::vector<std::string> hosts, const json& own = json::object())
      : name(name), hosts(std::move(hosts)) {
    repo.write_config(own);
    commits.push_back(repo.commit("v1 of " + name));
  }
  /// Its entry in the server config; run by the suite as root, it says so ("user": "root").
  json entry() const {
    json e{{"repo", repo.dir().string()}, {"hosts", hosts}, {"config", repo.config_path().string()}};
    if (geteuid() == 0) e["user"] = "root";
    return e;
  }
  std::string name;
  std::vector<std::string> hosts;
  AppRepo repo;
  std::vector<std::string> commits;
};

/// A server config in server.home() naming `apps`, with `extra` server fields (the
/// ports of the first one written kept).
json server_config(AppRepo& server, const std::vector<HostedApp*>& apps, const json& extra = json::object()) {
  json first{{"start_command", nullptr},
             {"health_endpoint", nullptr},
             {"health_timeout_ms", nullptr},
             {"drain_timeout_ms", nullptr},
             {"internal_port", nullptr}};
  if (server.config().contains("port")) {
    first["port"] = server.config()["port"];
    first["api_port"] = server.config()["api_port"];
  }
  json c = server.write_config(first);
  json list = json::object();
  for (const auto* a : apps) list[a->name] = a->entry();
  c["apps"] = list;
  c.merge_patch(extra);
  std::ofstream(server.config_path()) << c.dump(2);
  return c;
}

/// GET / on the public port with `host` as the Host header.
Http get_host(int port, const std::string& host, const std::string& path = "/") {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5, 0);
  c.set_read_timeout(10, 0);
  auto r = c.Get(path.c_str(), {{"Host", host}});
  if (!r) return {};
  return {r->status, r->body};
}

Http deploy_app(Daemon& d, const std::string& app, const std::string& commit) {
  return http_post(d.api_port(), "/apps/" + app + "/deploy", json{{"commit", commit}}.dump());
}

json app_status(Daemon& d, const std::string& app) {
  return http_get(d.api_port(), "/apps/" + app + "/status").json_body();
}

/// Polls `pred` every 20 ms until it holds or `timeout` passes; returns whether it held.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

/// Runs the CLI from `cwd` against `d`.
RunResult cli_in(Daemon& d, const fs::path& cwd, std::vector<std::string> args) {
  args.insert(args.begin(), slot_machine_bin());
  args.insert(args.end(), {"--api-port", std::to_string(d.api_port())});
  return run(args, cwd);
}

}  // namespace

TEST_CASE("apps: two apps behind one port, routed by Host; the API under /apps/NAME/; the CLI picks the app by "
          "the current directory or --app") {
  HostedApp blog("blog", {"blog.test"}), shop("shop", {"shop.test", "*.shop.test", "example.test/shop"});
  AppRepo server;
  server_config(server, {&blog, &shop});
  Daemon d(server, kProxyMode);
  const int port = server.config()["port"];

  // Before anything is deployed: the port answers at once, per host.
  CHECK(get_host(port, "blog.test").status == 503);
  CHECK(get_host(port, "nobody.test").status == 404);

  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);
  auto r = cli_in(d, shop.repo.dir(), {"deploy"});  // the app whose repository holds cwd
  REQUIRE_MESSAGE(r.exit_code == 0, r.out << r.err);

  CHECK(get_host(port, "blog.test").body.find("v1 of blog") != std::string::npos);
  CHECK(get_host(port, "BLOG.test.").body.find("v1 of blog") != std::string::npos);  // case, trailing dot
  CHECK(get_host(port, "blog.test:8080").body.find("v1 of blog") != std::string::npos);
  CHECK(get_host(port, "shop.test").body.find("v1 of shop") != std::string::npos);
  CHECK(get_host(port, "eu.shop.test").body.find("v1 of shop") != std::string::npos);
  // A path prefix: stripped, and named in X-Forwarded-Prefix (testapp's /headers echoes them).
  CHECK(get_host(port, "example.test", "/shop/").body.find("v1 of shop") != std::string::npos);
  const json seen = json::parse(get_host(port, "example.test", "/shop/headers").body, nullptr, false);
  CHECK_MESSAGE(seen.value("X-Forwarded-Prefix", "") == "/shop", seen);
  const Http unknown = get_host(port, "example.test", "/elsewhere");
  CHECK(unknown.status == 404);
  CHECK(unknown.body.find("v1 of") == std::string::npos);  // never another app's answer
  CHECK(get_host(port, "a.b.shop.test").status == 404);    // a wildcard matches one label

  // The API: the list, per-app routes, unprefixed routes refused with several apps.
  const json apps = http_get(d.api_port(), "/apps").json_body()["apps"];
  REQUIRE(apps.size() == 2);
  CHECK(apps[0]["name"] == "blog");
  CHECK(apps[0]["live_commit"] == blog.commits[0]);
  CHECK(apps[0]["healthy"] == true);
  CHECK(apps[1]["hosts"] == json{"shop.test", "*.shop.test", "example.test/shop"});
  const Http several = http_get(d.api_port(), "/status");
  CHECK(several.status == 400);
  CHECK(several.json_body()["error"] == "several apps: use /apps/NAME/...");
  CHECK(http_get(d.api_port(), "/apps/nope/status").status == 404);
  CHECK(app_status(d, "shop")["live_commit"] == shop.commits[0]);
  CHECK(http_get(d.api_port(), "/apps/blog/history").json_body()["entries"].size() == 1);
  CHECK(http_get(d.api_port(), "/apps/shop/logs?tail=5").status == 200);

  // The CLI: --app, the directory, and a line per app for status.
  const std::string v2 = blog.repo.commit("v2 of blog");
  r = cli_in(d, server.home(), {"deploy", v2});
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.err.find("several apps (blog, shop)") != std::string::npos, r.err);
  CHECK(r.err.find("--app NAME") != std::string::npos);
  r = cli_in(d, server.home(), {"deploy", "--app", "blog", "-q", v2});
  CHECK_MESSAGE(r.exit_code == 0, r.out << r.err);
  CHECK(get_host(port, "blog.test").body.find("v2 of blog") != std::string::npos);
  CHECK(get_host(port, "shop.test").body.find("v1 of shop") != std::string::npos);
  r = cli_in(d, server.home(), {"status"});
  CHECK(r.exit_code == 0);
  CHECK_MESSAGE(r.out.find("blog") != std::string::npos, r.out);
  CHECK(r.out.find("shop.test *.shop.test") != std::string::npos);
  CHECK(r.out.find("live " + v2.substr(0, 12)) != std::string::npos);
  r = cli_in(d, blog.repo.dir(), {"rollback", "-q"});
  CHECK_MESSAGE(r.exit_code == 0, r.out << r.err);
  CHECK(app_status(d, "blog")["live_commit"] == blog.commits[0]);
  r = cli_in(d, server.home(), {"status", "--app", "BAD name"});
  CHECK(r.exit_code == 2);
  // Each app keeps its data under <data>/apps/NAME/ and its log lines name it.
  CHECK(fs::exists(server.data_dir() / "apps" / "blog" / "state.json"));
  CHECK(fs::exists(server.data_dir() / "apps" / "shop" / "slot-a"));
  CHECK(d.log().find("app shop: deployed") != std::string::npos);
}

TEST_CASE("apps: an app whose own file is bad is listed with its error and serves 404; the others run") {
  HostedApp blog("blog", {"blog.test"}), shop("shop", {"shop.test"});
  std::ofstream(shop.repo.config_path()) << R"({"start_command": "x", "health_timeout_ms": -1})";
  AppRepo server;
  server_config(server, {&blog, &shop});
  Daemon d(server, kProxyMode);
  const int port = server.config()["port"];
  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);
  const json apps = http_get(d.api_port(), "/apps").json_body()["apps"];
  REQUIRE(apps.size() == 2);
  CHECK(!apps[0].contains("error"));
  CHECK_MESSAGE(apps[1]["error"].get<std::string>().find("health_timeout_ms") != std::string::npos, apps[1]);
  CHECK(get_host(port, "shop.test").status == 404);
  CHECK(get_host(port, "blog.test").body.find("v1 of blog") != std::string::npos);
  const Http refused = deploy_app(d, "shop", shop.commits[0]);
  CHECK(refused.status == 503);
  CHECK(refused.json_body()["error"].get<std::string>().find("slot-machine reload") != std::string::npos);
  CHECK(d.log().find("app shop does not run") != std::string::npos);
}

TEST_CASE("apps: configs that cannot run are refused at start, naming the app and field") {
  HostedApp blog("blog", {"blog.test"}), shop("shop", {"shop.test"});
  AppRepo server;
  server_config(server, {&blog, &shop});
  const std::string bin = slot_machine_bin();
  const std::string config = server.config_path().string();
  auto start = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv{bin, "start", "--config", config, "--data", server.data_dir().string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, server.home(), {}, 10s);
  };
  RunResult r = start({"--no-proxy"});
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.err.find("--no-proxy cannot serve a config with \"apps\"") != std::string::npos, r.err);

  server_config(server, {&blog, &shop}, {{"apps", {{"shop", {{"hosts", {"blog.test"}}}}}}});
  r = start({});
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.err.find("blog.test") != std::string::npos, r.err);

  server_config(server, {&blog}, {{"apps", {{"Bad_Name", {{"repo", "/x"}, {"hosts", {"x.test"}}}}}}});
  r = start({});
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.err.find("Bad_Name") != std::string::npos, r.err);

  server_config(server, {&blog}, {{"health_endpoint", "/up"}});
  r = start({});
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.err.find("\"health_endpoint\" is an app's field") != std::string::npos, r.err);
}

TEST_CASE("apps: deploys of two apps run at once; one app's hanging setup, failed deploys, crash loop and log "
          "flood add no failed or slow request to another (under load)") {
  HostedApp blog("blog", {"blog.test"}), shop("shop", {"shop.test"}, {{"setup_command", "sleep 1"},
                                                                      {"health_timeout_ms", 1000},
                                                                      {"restart", "on-failure"}});
  AppRepo server;
  server_config(server, {&blog, &shop});
  Daemon d(server, kProxyMode);
  const int port = server.config()["port"];
  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);

  // The shop's one-second setup does not hold the blog's deploy back: each app has its
  // own operation lock and queue.
  const std::string b2 = blog.repo.commit("v2 of blog");
  std::thread slow([&] { CHECK(deploy_app(d, "shop", shop.commits[0]).status == 200); });
  std::this_thread::sleep_for(200ms);
  CHECK(app_status(d, "shop")["operation"] == "deploy");
  const auto began = std::chrono::steady_clock::now();
  CHECK(deploy_app(d, "blog", b2).status == 200);
  const auto took = std::chrono::steady_clock::now() - began;
  CHECK_MESSAGE(took < 700ms, std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
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
}

TEST_CASE("apps: upgrade hands every app to the new daemon (same pids), under load") {
  HostedApp blog("blog", {"blog.test"}), shop("shop", {"shop.test"});
  AppRepo server;
  server_config(server, {&blog, &shop});
  Daemon d(server, kProxyMode);
  const int port = server.config()["port"];
  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);
  REQUIRE(deploy_app(d, "shop", shop.commits[0]).status == 200);
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
  const std::string v2 = shop.repo.commit("v2 of shop");
  CHECK(deploy_app(d, "shop", v2).status == 200);
}

TEST_CASE("apps: hostile Host headers get a 400 or the right app, never another app's answer") {
  HostedApp blog("blog", {"blog.test"}), shop("shop", {"shop.test"});
  AppRepo server;
  server_config(server, {&blog, &shop});
  Daemon d(server, kProxyMode);
  const int port = server.config()["port"];
  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);
  REQUIRE(deploy_app(d, "shop", shop.commits[0]).status == 200);
  auto with_host = [&](const std::string& host_line) {
    return raw_exchange(port, "GET / HTTP/1.1\r\n" + host_line + "Connection: close\r\n\r\n");
  };
  auto status_of = [](const std::string& answer) { return answer.substr(0, 12); };
  CHECK(status_of(with_host("Host: blog.test\r\n")) == "HTTP/1.1 200");
  CHECK(status_of(with_host("Host: blog.test\r\nHost: shop.test\r\n")) == "HTTP/1.1 400");
  CHECK(status_of(with_host("")) == "HTTP/1.1 400");
  CHECK(status_of(with_host("Host: \r\n")) == "HTTP/1.1 400");
  CHECK(status_of(with_host("Host: blog .test\r\n")) == "HTTP/1.1 400");
  CHECK(status_of(with_host("Host: blog.test\x01\r\n")).substr(0, 10) == "HTTP/1.1 4");
  CHECK(status_of(with_host("Host: " + std::string(300, 'a') + ".test\r\n")) == "HTTP/1.1 400");
  CHECK(status_of(with_host("Host: 127.0.0.1\r\n")) == "HTTP/1.1 404");
  CHECK(status_of(with_host("Host: [::1]:80\r\n")) == "HTTP/1.1 404");
  const std::string absolute =
      raw_exchange(port, "GET http://shop.test/ HTTP/1.1\r\nHost: blog.test\r\nConnection: close\r\n\r\n");
  CHECK(status_of(absolute) == "HTTP/1.1 400");
  CHECK(absolute.find("v1 of") == std::string::npos);
  const std::string trailing = with_host("Host: shop.test.\r\n");
  CHECK(trailing.find("v1 of shop") != std::string::npos);
}

TEST_CASE("apps: server.json.example starts; apps whose repositories are missing are listed with the error") {
  AppRepo server;
  server.write_config();
  json c = json::parse(read_file(fs::path(SPEC_SOURCE_DIR) / ".." / "server.json.example"));
  c["port"] = server.config()["port"];
  c["api_port"] = server.config()["api_port"];
  c["tls"]["port"] = free_port();
  std::ofstream(server.config_path()) << c.dump(2);
  Daemon d(server, kProxyMode);
  const json apps = http_get(d.api_port(), "/apps").json_body()["apps"];
  REQUIRE(apps.size() == 3);
  for (const auto& a : apps) CHECK_MESSAGE(a["error"].get<std::string>().find("/srv/") != std::string::npos, a);
  CHECK(get_host(server.config()["port"], "blog.example.com").status == 404);
}

TEST_CASE("apps: /metrics labels every per-app series with app, counts each app's requests, and promtool accepts it") {
  HostedApp blog("blog", {"blog.test"}), shop("shop", {"shop.test"});
  AppRepo server;
  server_config(server, {&blog, &shop});
  Daemon d(server, kProxyMode);
  const int port = server.config()["port"];
  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);
  REQUIRE(deploy_app(d, "shop", "no-such-revision").status == 404);
  for (int i = 0; i < 3; ++i) CHECK(get_host(port, "blog.test").status == 200);
  CHECK(get_host(port, "shop.test").status == 503);
  // A request is counted once its answer is written, which its client may read first.
  Http m;
  CHECK(eventually([&] {
    m = http_get(d.api_port(), "/metrics");
    return m.body.find("slot_machine_app_requests_total{app=\"shop\",code=\"5xx\"} 1") != std::string::npos &&
           m.body.find("slot_machine_app_requests_total{app=\"blog\",code=\"2xx\"} 3") != std::string::npos;
  }, 5s));
  REQUIRE(m.status == 200);
  CHECK(m.body.find("slot_machine_deploys_total{app=\"blog\",result=\"ok\"} 1") != std::string::npos);
  CHECK(m.body.find("slot_machine_live_healthy{app=\"blog\"} 1") != std::string::npos);
  CHECK(m.body.find("slot_machine_live_healthy{app=\"shop\"} 0") != std::string::npos);
  CHECK(m.body.find("slot_machine_live_info{app=\"blog\",slot=\"a\",commit=\"" + blog.commits[0] + "\"} 1") !=
        std::string::npos);
  CHECK(m.body.find("slot_machine_app_requests_total{app=\"blog\",code=\"2xx\"} 3") != std::string::npos);
  CHECK(m.body.find("slot_machine_app_requests_total{app=\"shop\",code=\"5xx\"} 1") != std::string::npos);
  CHECK(m.body.find("slot_machine_deploy_duration_seconds_count{app=\"blog\"} 1") != std::string::npos);
  std::ofstream(server.home() / "scrape.txt") << m.body;
  const RunResult r = run({"/bin/sh", "-c", "promtool check metrics < scrape.txt"}, server.home());
  CHECK_MESSAGE(r.exit_code == 0, r.out << r.err);
}

TEST_CASE("apps: /ui/ lists the apps and opens each one's page, whose endpoints are the app's (browser)") {
  HostedApp blog("blog", {"blog.test"}), shop("shop", {"shop.test"});
  AppRepo server;
  server_config(server, {&blog, &shop});
  Daemon d(server, kProxyMode);
  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);
  REQUIRE(deploy_app(d, "shop", shop.commits[0]).status == 200);
  const std::string shop_v2 = shop.repo.commit("v2 of shop");

  const Http list = http_get(d.api_port(), "/ui/");
  CHECK(list.status == 200);
  CHECK(list.body.find("href=\"/ui/apps/blog/\"") != std::string::npos);
  const Http page = http_get(d.api_port(), "/ui/apps/shop/");
  CHECK(page.status == 200);
  CHECK(page.body.find("data-base=\"/apps/shop\"") != std::string::npos);
  CHECK(page.body.find(shop.commits[0].substr(0, 12)) != std::string::npos);  // first state in the HTML
  CHECK(http_get(d.api_port(), "/ui/apps/nope/").status == 404);
  const json revisions = http_get(d.api_port(), "/apps/shop/revisions").json_body();
  CHECK(revisions["recent"][0]["hash"] == shop_v2);
  CHECK(http_get(d.api_port(), "/revisions").status == 400);
  CHECK(http_get(d.api_port(), "/apps/blog/commits/" + blog.commits[0]).json_body()["subject"] == "v1 of blog");
  CHECK(get_first_bytes(d.api_port(), "/apps/blog/events").status == 200);

  std::vector<std::string> argv{"/usr/bin/python3", std::string(SPEC_SOURCE_DIR) + "/browser/dashboard.py", "apps",
                                fmt::format("http://127.0.0.1:{}/ui/", d.api_port()), blog.commits[0],
                                shop.commits[0], shop_v2};
  const auto r = run(argv, server.home(), {}, std::chrono::minutes(3));
  INFO("browser output:\n" << r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(app_status(d, "shop")["live_commit"] == shop_v2);
  CHECK(app_status(d, "blog")["live_commit"] == blog.commits[0]);
}

TEST_CASE("apps: webhooks at /.slot-machine/hooks/NAME/FORGE deploy that app only; an app without webhooks or an "
          "unknown one is 404") {
  const std::string secret = "apps-webhook-secret-0123456789";
  HostedApp blog("blog", {"blog.test"}), shop("shop", {"shop.test"});
  const fs::path secret_path = secret_file(shop.repo, "hook.secret", secret);
  json own = shop.repo.config();
  own["webhooks"] = {{"secret_file", secret_path.string()}};
  std::ofstream(shop.repo.config_path()) << own.dump();
  AppRepo server;
  server_config(server, {&blog, &shop});
  Daemon d(server, kProxyMode);
  const int port = server.config()["port"];
  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);
  const std::string v2 = shop.repo.commit("v2 of shop");
  const std::string body = json{{"ref", "refs/heads/main"}, {"after", v2}}.dump();
  auto post_hook = [&](const std::string& path, const std::string& signature) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    auto r = c.Post(path.c_str(), {{"X-Slot-Machine-Signature", signature}, {"Host", "anything.test"}}, body,
                    "application/json");
    return r ? Http{r->status, r->body} : Http{};
  };
  const std::string good = "sha256=" + hmac_hex(secret, body);
  CHECK(post_hook("/.slot-machine/hooks/shop/generic", "sha256=" + std::string(64, '0')).status == 401);
  const Http accepted = post_hook("/.slot-machine/hooks/shop/generic", good);
  CHECK_MESSAGE(accepted.status == 202, accepted.body);
  CHECK(eventually([&] { return app_status(d, "shop")["live_commit"] == v2; }, 30s));
  CHECK(app_status(d, "blog")["live_commit"] == blog.commits[0]);
  CHECK(post_hook("/.slot-machine/hooks/blog/generic", good).status == 404);
  const Http unknown = post_hook("/.slot-machine/hooks/nope/generic", good);
  CHECK(unknown.status == 404);
  CHECK(unknown.body.find("no app named \\\"nope\\\"") != std::string::npos);
  CHECK(eventually([&] { return d.log().find("app shop: webhook: deployed " + v2.substr(0, 12)) != std::string::npos; },
                   5s));
}

TEST_CASE("apps: `slot-machine systemd` writes one unit pair for a server config, which systemd-analyze accepts") {
  HostedApp blog("blog", {"blog.test"});
  AppRepo server;
  const json c = server_config(server, {&blog}, {{"tls", {{"port", free_port()},
                                                          {"cert", "/etc/ssl/x.pem"},
                                                          {"key", "/etc/ssl/x.key"}}}});
  const fs::path out = server.home() / "units";
  fs::create_directories(out);
  auto r = run({slot_machine_bin(), "systemd", "--config", server.config_path().string(), "--out", out.string(),
                "--name", "slot-machine-apps"},
               server.home());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const std::string s = read_file(out / "slot-machine-apps.service"), k = read_file(out / "slot-machine-apps.socket");
  CHECK(s.find("Description=slot-machine: zero-downtime deploys of the apps of " + server.config_path().string()) !=
        std::string::npos);
  CHECK(s.find("--data /var/lib/slot-machine-apps") != std::string::npos);
  CHECK(s.find("ExecReload=") != std::string::npos);
  CHECK(k.find(fmt::format("ListenStream=0.0.0.0:{}", c["port"].get<int>())) != std::string::npos);
  CHECK(k.find(fmt::format("ListenStream=0.0.0.0:{}", c["tls"]["port"].get<int>())) != std::string::npos);
  CHECK(k.find(fmt::format("ListenStream=127.0.0.1:{}", c["api_port"].get<int>())) != std::string::npos);
  auto v = run({"/usr/bin/systemd-analyze", "verify", (out / "slot-machine-apps.service").string(),
                (out / "slot-machine-apps.socket").string()},
               server.home());
  CHECK_MESSAGE(v.exit_code == 0, v.out << v.err);
  r = run({slot_machine_bin(), "systemd", "--config", server.config_path().string(), "--out", out.string(),
           "--name", "other", "--no-proxy"},
          server.home());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--no-proxy cannot serve") != std::string::npos);
}

TEST_CASE("apps: each app as its own system user: its processes, slots and data are its own, another app's user "
          "can neither read them nor signal its processes; as root, an app without \"user\" does not run") {
  if (geteuid() != 0 || !getpwnam("nobody") || !getpwnam("daemon")) {
    MESSAGE("skipped: needs root and the users nobody and daemon (CI runs the suite as root)");
    return;
  }
  // testapp where the apps' users can run it (the build tree may be in a 0700 directory).
  TempDir bin;
  fs::permissions(bin.path, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec |
                                fs::perms::group_read | fs::perms::others_read);
  fs::copy_file(testapp_bin(), bin.path / "testapp");
  const std::string start = "exec " + (bin.path / "testapp").string() + " $(cat flags)";
  HostedApp blog("blog", {"blog.test"}, {{"start_command", start}, {"setup_command", "id -un > setup-ran-as"}});
  HostedApp shop("shop", {"shop.test"}, {{"start_command", start}});
  HostedApp plain("plain", {"plain.test"}, {{"start_command", start}});
  AppRepo server;
  // The apps' users must be able to reach their data directories (0700 each, theirs).
  fs::permissions(server.home(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  json apps{{"blog", blog.entry()}, {"shop", shop.entry()}, {"plain", plain.entry()}};
  apps["blog"]["user"] = "nobody";
  apps["shop"]["user"] = "daemon";
  apps["plain"].erase("user");
  server_config(server, {&blog}, {{"apps", apps}});
  Daemon d(server, kProxyMode);
  const int port = server.config()["port"];
  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);
  REQUIRE(deploy_app(d, "shop", shop.commits[0]).status == 200);
  CHECK(get_host(port, "blog.test").body.find("v1 of blog") != std::string::npos);
  CHECK(get_host(port, "shop.test").body.find("v1 of shop") != std::string::npos);

  // Refused as root without "user", in one line naming the app; the others run.
  const json listed = http_get(d.api_port(), "/apps").json_body()["apps"];
  REQUIRE(listed.size() == 3);
  CHECK(listed[1]["name"] == "plain");
  CHECK_MESSAGE(listed[1]["error"].get<std::string>().find("app plain would run as root: set its \"user\"") !=
                    std::string::npos,
                listed[1]);

  auto uid_of = [](int pid) {
    const std::string st = read_file(fmt::format("/proc/{}/status", pid));
    const size_t at = st.find("\nUid:");
    return at == std::string::npos ? -1 : std::stoi(st.substr(at + 5));
  };
  const int blog_pid = app_status(d, "blog")["live_pid"], shop_pid = app_status(d, "shop")["live_pid"];
  CHECK(uid_of(blog_pid) == static_cast<int>(getpwnam("nobody")->pw_uid));
  CHECK(uid_of(shop_pid) == static_cast<int>(getpwnam("daemon")->pw_uid));
  const fs::path blog_dir = server.data_dir() / "apps" / "blog", shop_dir = server.data_dir() / "apps" / "shop";
  CHECK(read_file(blog_dir / "slot-a" / "setup-ran-as") == "nobody\n");
  struct stat st {};
  REQUIRE(stat(shop_dir.c_str(), &st) == 0);
  CHECK(st.st_uid == getpwnam("daemon")->pw_uid);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(stat((shop_dir / "slot-a" / "VERSION").c_str(), &st) == 0);
  CHECK(st.st_uid == getpwnam("daemon")->pw_uid);

  // The blog's user cannot read the shop's files nor signal its process (and back).
  auto as = [&](const std::string& user, const std::string& command) {
    return run({"/usr/bin/setpriv", "--reuid=" + user, "--regid=" + std::to_string(getpwnam(user.c_str())->pw_gid),
                "--init-groups", "--", "/bin/sh", "-c", command},
               "/", {}, 10s);
  };
  CHECK(as("nobody", "cat " + (shop_dir / "slot-a" / "VERSION").string()).exit_code != 0);
  CHECK(as("nobody", "ls " + shop_dir.string()).exit_code != 0);
  CHECK(as("nobody", "kill -0 " + std::to_string(shop_pid)).exit_code != 0);
  CHECK(as("daemon", "kill -0 " + std::to_string(blog_pid)).exit_code != 0);
  CHECK(as("daemon", "cat " + (blog_dir / "slot-a" / "VERSION").string()).exit_code != 0);
  CHECK(as("daemon", "cat " + (shop_dir / "slot-a" / "VERSION").string()).exit_code == 0);  // its own
  // A second deploy and a rollback keep the user.
  const std::string b2 = blog.repo.commit("v2 of blog");
  REQUIRE(deploy_app(d, "blog", b2).status == 200);
  CHECK(uid_of(app_status(d, "blog")["live_pid"]) == static_cast<int>(getpwnam("nobody")->pw_uid));
  REQUIRE(stat((blog_dir / "slot-b" / "VERSION").c_str(), &st) == 0);
  CHECK(st.st_uid == getpwnam("nobody")->pw_uid);
}

TEST_CASE("apps: `hook install` in an app's repository records that app; outside every app's it says to pass --app") {
  HostedApp blog("blog", {"blog.test"});
  AppRepo server;
  server_config(server, {&blog});
  auto r = run({slot_machine_bin(), "hook", "install", "--config", server.config_path().string()}, blog.repo.dir());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const std::string hook = read_file(blog.repo.dir() / ".git" / "hooks" / "pre-receive");
  CHECK_MESSAGE(hook.find("--app 'blog'") != std::string::npos, hook);
  AppRepo other;
  r = run({slot_machine_bin(), "hook", "install", "--config", server.config_path().string()}, other.dir());
  CHECK(r.exit_code == 1);
  CHECK_MESSAGE(r.err.find("has this repository as its \"repo\" (apps: blog); pass --app NAME") != std::string::npos,
                r.err);
}
