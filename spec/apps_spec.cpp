// Contract §13: several apps behind one port, routed by host name; the API under
// /apps/NAME/, the CLI's --app, what a server config refuses, hostile Host headers.
// Operations across apps: apps_ops_spec.cpp; what surrounds them: apps_edge_spec.cpp.

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

  // As the error says: fix it, reload, and it runs.
  shop.repo.write_config();
  REQUIRE(http_post(d.api_port(), "/reload", "{}").status == 200);
  CHECK(deploy_app(d, "shop", shop.commits[0]).status == 200);
  CHECK(get_host(port, "shop.test").body.find("v1 of shop") != std::string::npos);
  // What was wrong may be outside the config (a repository created since): a reload
  // tries an app that did not run again, its entry and file unchanged.
  TempDir later;
  HostedApp wiki("wiki", {"wiki.test"});
  json entry = wiki.entry();
  entry["repo"] = (later.path / "wiki").string();
  server_config(server, {&blog, &shop}, {{"apps", {{"wiki", entry}}}});
  REQUIRE(http_post(d.api_port(), "/reload", "{}").status == 200);
  CHECK(http_get(d.api_port(), "/apps/wiki/status").status == 503);
  sh("git clone -q " + wiki.repo.dir().string() + " wiki", later.path);
  const Http again = http_post(d.api_port(), "/reload", "{}");
  CHECK_MESSAGE(again.json_body()["apps"]["changed"] == json{"wiki"}, again.body);
  CHECK(deploy_app(d, "wiki", wiki.commits[0]).status == 200);
  CHECK(get_host(port, "wiki.test").body.find("v1 of wiki") != std::string::npos);
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

TEST_CASE("apps: hostile Host headers get a 400 or the right app, never another app's answer") {
  TwoApps two;
  const int port = two.port;
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
