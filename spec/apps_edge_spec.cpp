// Contract §13: what surrounds several apps: metrics labelled by app, the dashboard's
// list and pages, webhooks per app, systemd units for a server, system users per app,
// the git hook recording its app.

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
