#pragma once
// What the several-apps specs share (apps_*_spec, and acme_ and notify_spec's cases of several apps): an app
// of a server (its repository and own file), the server config naming them, and
// requests by Host, per app and from the CLI.

#include <unistd.h>

#include <doctest/doctest.h>
#include <httplib.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace spec {

/// The server config's entry for an app whose repository and own file `repo` holds,
/// reached at `hosts`. The suite runs as root in CI, where an app must say so.
inline json app_entry(const AppRepo& repo, const std::vector<std::string>& hosts) {
  json e{{"repo", repo.dir().string()}, {"hosts", hosts}, {"config", repo.config_path().string()}};
  if (geteuid() == 0) e["user"] = "root";
  return e;
}

/// The server's fields written to server.config_path() (fresh ports the first time, the
/// same ones after), with `overrides`, and none of an app's (AppRepo writes those): the
/// start of a server config, whose "apps" the caller adds.
inline json server_fields(AppRepo& server, const json& overrides = json::object()) {
  json first{{"start_command", nullptr},
             {"health_endpoint", nullptr},
             {"health_timeout_ms", nullptr},
             {"drain_timeout_ms", nullptr},
             {"internal_port", nullptr}};
  if (server.config().contains("port")) {
    first["port"] = server.config()["port"];
    first["api_port"] = server.config()["api_port"];
  }
  first.merge_patch(overrides);
  return server.write_config(first);
}

/// An app of a server: its repository, with testapp commits, and its own file (written
/// by AppRepo::write_config: the ports there are ignored by the server).
struct HostedApp {
  HostedApp(const std::string& name, std::vector<std::string> hosts, const json& own = json::object())
      : name(name), hosts(std::move(hosts)) {
    json o = own;
    if (!o.contains("proxy_workers")) o["proxy_workers"] = nullptr;  // the server's field, not an app's
    repo.write_config(o);
    commits.push_back(repo.commit("v1 of " + name));
  }
  json entry() const { return app_entry(repo, hosts); }
  std::string name;
  std::vector<std::string> hosts;
  AppRepo repo;
  std::vector<std::string> commits;
};

/// A server config in server.home() naming `apps`, with `extra` server fields (the
/// ports of the first one written kept).
inline json server_config(AppRepo& server, const std::vector<HostedApp*>& apps, const json& extra = json::object()) {
  json c = server_fields(server);
  json list = json::object();
  for (const auto* a : apps) list[a->name] = a->entry();
  c["apps"] = list;
  c.merge_patch(extra);
  std::ofstream(server.config_path()) << c.dump(2);
  return c;
}

/// GET / on the public port with `host` as the Host header.
inline Http get_host(int port, const std::string& host, const std::string& path = "/") {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5, 0);
  c.set_read_timeout(10, 0);
  auto r = c.Get(path.c_str(), {{"Host", host}});
  if (!r) return {};
  return {r->status, r->body};
}

inline Http deploy_app(Daemon& d, const std::string& app, const std::string& commit) {
  return http_post(d.api_port(), "/apps/" + app + "/deploy", json{{"commit", commit}}.dump());
}

inline json app_status(Daemon& d, const std::string& app) {
  return http_get(d.api_port(), "/apps/" + app + "/status").json_body();
}

/// The set-up most several-app cases share: a blog (blog.test) and a shop (shop.test),
/// each with `own` in its own file, on one server in proxy mode, both deployed.
struct TwoApps {
  explicit TwoApps(const json& own = json::object())
      : blog("blog", {"blog.test"}, own), shop("shop", {"shop.test"}, own) {
    REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);
    REQUIRE(deploy_app(d, "shop", shop.commits[0]).status == 200);
  }
  HostedApp blog, shop;
  AppRepo server;
  json config = server_config(server, {&blog, &shop});
  Daemon d{server, kProxyMode};
  const int port = server.config()["port"];
};

/// Polls `pred` every 20 ms until it holds or `timeout` passes; returns whether it held.
template <typename Pred>
inline bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

/// Runs the CLI from `cwd` against `d`.
inline RunResult cli_in(Daemon& d, const fs::path& cwd, std::vector<std::string> args) {
  args.insert(args.begin(), slot_machine_bin());
  args.insert(args.end(), {"--api-port", std::to_string(d.api_port())});
  return run(args, cwd);
}

}  // namespace spec
