#include "api/start.h"

#include <fmt/format.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <set>
#include <thread>

#include "api/server.h"
#include "config/config.h"
#include "config/env_file.h"
#include "daemon/daemon.h"
#include "daemon/proxy_router.h"
#include "daemon/router.h"
#include "git/git.h"
#include "log/log.h"
#include "process/drain.h"
#include "process/reaper.h"
#include "proxy/proxy.h"

namespace sm::api {
namespace fs = std::filesystem;

namespace {

int fail(int code, const std::string& message) {
  std::cerr << "slot-machine: " << message << "\n";
  return code;
}

}  // namespace

int start_daemon(const StartOptions& opts) {
  // Before any thread exists, so every thread inherits the mask.
  process::block_daemon_signals();

  if (opts.api_port) {
    try {
      config::check_port("--port", *opts.api_port);
    } catch (const config::ConfigError& e) {
      return fail(2, e.what());
    }
  }
  std::error_code ec;
  if (!fs::exists(opts.config, ec))
    return fail(2, fmt::format("no config file at {}: run `slot-machine init` to create "
                               "slot-machine.json, or pass --config PATH",
                               opts.config.string()));
  config::Config cfg;
  try {
    auto loaded = config::load(opts.config);
    for (const auto& w : loaded.warnings) log::info("warning: {}", w);
    cfg = std::move(loaded.config);
    if (opts.api_port) cfg.api_port = *opts.api_port;
    if (!cfg.env_file.empty()) config::load_env_file(cfg.env_file);
  } catch (const config::ConfigError& e) {
    return fail(2, fmt::format("{} (in {})", e.what(), opts.config.string()));
  }

  git::Library git_library;
  std::optional<git::Repository> repo;
  try {
    repo.emplace(git::Repository::open(fs::absolute(opts.repo)));
  } catch (const git::GitError& e) {
    return fail(1, fmt::format("{}; pass --repo DIR with the app's git repository", e.what()));
  }

  daemon::Paths paths{fs::absolute(opts.data).lexically_normal()};
  fs::create_directories(paths.data_dir, ec);
  if (ec)
    return fail(1, fmt::format("cannot create the data directory {}: {}; pass --data DIR",
                               paths.data_dir.string(), ec.message()));

  // Proxy mode listens only from the first deploy on, but a port that is taken now is
  // an error now, not at the first deploy.
  std::optional<proxy::Proxy> proxy;
  std::unique_ptr<daemon::Router> router;
  if (opts.no_proxy) {
    router = std::make_unique<daemon::DirectRouter>(daemon::Ports{cfg.port, cfg.internal_port});
  } else {
    for (int p : {cfg.port, cfg.internal_port})
      if (!daemon::port_is_free(p))
        return fail(1, fmt::format("port {} is already in use; the proxy needs it (\"port\"/"
                                   "\"internal_port\" in {}), or start with --no-proxy",
                                   p, opts.config.string()));
    proxy::Options popts;
    popts.public_port = cfg.port;
    popts.internal_port = cfg.internal_port;
    popts.backend_timeout = std::chrono::milliseconds(cfg.proxy_timeout_ms);
    popts.header_timeout = std::chrono::milliseconds(cfg.proxy_header_timeout_ms);
    popts.max_conns_per_ip = static_cast<size_t>(cfg.proxy_max_conns_per_ip);
    proxy.emplace(std::move(popts));
    router = std::make_unique<daemon::ProxyRouter>(
        *proxy, std::set<int>{cfg.port, cfg.internal_port, cfg.api_port},
        cfg.internal_port == cfg.port);
  }

  process::Reaper reaper;
  daemon::Daemon daemon(cfg, paths, std::move(*repo), reaper, *router);
  ApiServer server(daemon);
  try {
    server.bind(cfg.api_bind, cfg.api_port);
  } catch (const std::exception& e) {
    return fail(1, e.what());
  }
  // After the bind (a second daemon must fail before it touches anything), before
  // serving: clients connecting meanwhile wait in the listen backlog.
  daemon.restore();
  std::thread api([&] { server.listen(); });
  log::info("listening on http://{}:{} (mode {}, repo {}, data {})", cfg.api_bind, cfg.api_port,
            router->mode(), fs::absolute(opts.repo).lexically_normal().string(),
            paths.data_dir.string());

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);  // a closed terminal must not orphan the apps
  int sig = 0;
  sigwait(&stop_signals, &sig);
  log::info("received {}: stopping the API and draining every slot", strsignal(sig));

  daemon.begin_shutdown();
  server.stop();
  api.join();
  daemon.shutdown();
  if (size_t left = process::kill_all_descendants(reaper))
    log::info("killed {} leftover process(es) at shutdown", left);
  log::info("stopped");
  return 0;
}

}  // namespace sm::api
