#include "api/start.h"

#include <fmt/format.h>

#include <csignal>
#include <iostream>
#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "api/server.h"
#include "api/upgrader.h"
#include "config/config.h"
#include "config/env_file.h"
#include "daemon/daemon.h"
#include "edge/api_token.h"
#include "edge/acme/manager.h"
#include "edge/tls_files.h"
#include "files/dir_lock.h"
#include "process/port_owner.h"
#include "daemon/proxy_router.h"
#include "daemon/router.h"
#include "metrics/exporter.h"
#include "ui/dashboard.h"
#include "git/git.h"
#include "log/log.h"
#include "process/drain.h"
#include "process/reaper.h"
#include "proxy/proxy.h"
#include "service/listen_fds.h"
#include "service/notify.h"
#include "service/upgrade.h"
#include "notify/notifier.h"
#include "triggers/receiver.h"
#include "version/version.h"

namespace sm::api {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

/// The arguments that start this same daemon again (absolute paths: same meaning).
std::vector<std::string> start_args(const StartOptions& o, const fs::path& data_dir) {
  std::vector<std::string> a{"start", "--config", fs::absolute(o.config).lexically_normal().string(),
                             "--repo", fs::absolute(o.repo).lexically_normal().string(),
                             "--data", data_dir.string()};
  if (o.api_port) a.insert(a.end(), {"--port", std::to_string(*o.api_port)});
  if (o.no_proxy) a.push_back("--no-proxy");
  return a;
}

/// The API's token and TLS from the config (and $SLOT_MACHINE_API_TOKEN), after checking
/// every certificate (the public side's too). Throws ConfigError: an unusable token or
/// certificate, or a non-loopback api_bind without a token.
ApiSecurity api_security(const config::Config& cfg) {
  ApiSecurity s;
  s.token = edge::find_token(cfg.api_token_file);
  if (!s.token && !edge::is_loopback(cfg.api_bind))
    throw config::ConfigError(fmt::format(
        "config: \"api_bind\" is {}, reachable from other machines, but the API has no token: "
        "set \"api_token_file\" (or ${}), or bind 127.0.0.1",
        cfg.api_bind, edge::kTokenVar));
  if (cfg.tls_port && cfg.acme_domains.empty()) {
    const std::string expires = edge::check_cert_files({cfg.tls_cert, cfg.tls_key}, "tls");
    log::info("HTTPS on port {} with {} (expires {}); plain HTTP on port {} redirects to it",
              cfg.tls_port, cfg.tls_cert.string(), expires, cfg.port);
  }
  if (!cfg.api_tls_cert.empty()) {
    s.tls = {cfg.api_tls_cert, cfg.api_tls_key};
    const std::string expires = edge::check_cert_files(s.tls, "api_tls");
    log::info("API over HTTPS with {} (expires {})", cfg.api_tls_cert.string(), expires);
  }
  return s;
}

/// ACME (tls.acme): the certificate stored under <data>/tls when it still serves, and
/// the thread that obtains or renews it. Throws when <data>/tls is unusable.
std::unique_ptr<edge::acme::Manager> start_acme(const config::Config& cfg, const fs::path& data_dir,
                                                edge::acme::Challenges& challenges, proxy::Proxy& proxy) {
  edge::acme::ManagerOptions o;
  o.settings = {cfg.acme_directory_url, cfg.acme_ca_file, cfg.acme_email};
  o.domains = cfg.acme_domains;
  o.dir = data_dir / "tls";
  o.challenges = &challenges;
  o.install = [&proxy](const fs::path& cert, const fs::path& key) { proxy.use_certificate(cert, key); };
  auto m = std::make_unique<edge::acme::Manager>(std::move(o));
  if (auto files = m->usable()) {
    try {
      proxy.use_certificate(files->first, files->second);
      log::info("HTTPS on port {} for {} with the certificate in {}; plain HTTP on port {} redirects to it",
                cfg.tls_port, fmt::join(cfg.acme_domains, ", "), files->first.string(), cfg.port);
      return m;
    } catch (const std::exception& e) {
      log::info("ACME: the stored certificate cannot be used ({}); getting a new one", e.what());
    }
  }
  log::info("HTTPS on port {} for {}: no certificate yet, asking {}; meanwhile plain HTTP on port {} "
            "answers ACME challenges and 503, and HTTPS handshakes fail",
            cfg.tls_port, fmt::join(cfg.acme_domains, ", "), cfg.acme_directory_url, cfg.port);
  return m;
}

/// "port N is already in use by WHO; NEED in CONFIG), ...what to do": never advises
/// --no-proxy when the holder is another slot-machine (two daemons would share an app).
std::string port_taken(int port, const std::string& need, const fs::path& config) {
  const auto owner = process::port_owner(port);
  const std::string by = owner ? " by " + process::describe(*owner) : "";
  if (owner && owner->name == "slot-machine")
    return fmt::format("port {} is already in use{}; {} in {}): stop that daemon, or give this one "
                       "another port", port, by, need, config.string());
  return fmt::format("port {} is already in use{}; {} in {}): stop what holds it, choose another "
                     "port, or start with --no-proxy", port, by, need, config.string());
}

}  // namespace

int start_daemon(const StartOptions& opts) {
  // Before any thread exists, so every thread inherits the mask.
  process::block_daemon_signals();
  service::own_executable();  // now, before an upgrade of the package replaces the file
  // Started by an upgrade: the old daemon waits to hear that this one serves, or why not.
  auto predecessor = service::Predecessor::from_environment();
  auto fail = [&](int code, const std::string& message) {
    std::cerr << "slot-machine: " << message << "\n";
    if (predecessor) predecessor->failed(message);
    return code;
  };

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
  ApiSecurity security;
  try {
    security = api_security(cfg);
  } catch (const config::ConfigError& e) {
    return fail(2, fmt::format("{} (in {})", e.what(), opts.config.string()));
  }
  if (cfg.standby != "off" && opts.no_proxy)
    return fail(2, fmt::format("config: \"standby\" needs proxy mode (the old app keeps running beside the "
                               "new one, which only the proxy can switch between); set it to \"off\" or "
                               "start without --no-proxy (in {})",
                               opts.config.string()));
  if (cfg.tls_port && opts.no_proxy)
    return fail(2, fmt::format("config: \"tls\" needs proxy mode (the daemon terminates TLS in "
                               "front of the app); start without --no-proxy (in {})",
                               opts.config.string()));
  if (cfg.webhooks && opts.no_proxy)
    return fail(2, fmt::format("config: \"webhooks\" needs proxy mode (the daemon answers them on the public "
                               "port, in front of the app); start without --no-proxy (in {})",
                               opts.config.string()));
  // Made before the proxy, which asks it; started once the daemon can deploy.
  std::shared_ptr<triggers::Receiver> webhooks;
  if (cfg.webhooks) {
    try {
      webhooks = std::make_shared<triggers::Receiver>(
          cfg.webhooks->path,
          edge::read_secret_file(cfg.webhooks->secret_file, "webhooks.secret_file", "the webhook secret",
                                 "write the secret your forge signs with into it and chmod 600 it"),
          cfg.webhooks->branch);
    } catch (const config::ConfigError& e) {
      return fail(2, fmt::format("{} (in {})", e.what(), opts.config.string()));
    }
  }

  // Sockets passed by systemd, or by the daemon this one replaces.
  service::Listeners given;
  try {
    given = service::assign(service::passed_sockets(),
                            {cfg.port, cfg.api_port, cfg.internal_port, !opts.no_proxy, cfg.tls_port});
  } catch (const service::ActivationError& e) {
    return fail(2, e.what());
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
  // Before any port is looked at: a second daemon on this data directory would adopt
  // the first one's apps and kill them when it stops.
  std::optional<files::DirLock> data_lock;
  try {
    data_lock.emplace(files::DirLock::acquire(paths.data_dir));
  } catch (const files::DirLock::Held& e) {
    return fail(2, e.what());
  } catch (const std::exception& e) {
    return fail(1, e.what());
  }

  // Proxy mode listens only from the first deploy on, but a port that is taken now is
  // an error now, not at the first deploy.
  edge::acme::Challenges challenges;  // outlives the proxy, which reads it
  std::optional<proxy::Proxy> proxy;
  std::unique_ptr<daemon::Router> router;
  if (opts.no_proxy) {
    router = std::make_unique<daemon::DirectRouter>(daemon::Ports{cfg.port, cfg.internal_port});
  } else {
    if (cfg.tls_port && given.https_fd < 0 && !daemon::port_is_free(cfg.tls_port))
      return fail(1, port_taken(cfg.tls_port, "HTTPS needs it (\"tls.port\"", opts.config));
    for (int p : {cfg.port, cfg.internal_port})
      if (!(p == cfg.port ? given.public_fd >= 0 : given.internal_fd >= 0) && !daemon::port_is_free(p))
        return fail(1, port_taken(p, "the proxy needs it (\"port\"/\"internal_port\"", opts.config));
    proxy::Options popts;
    popts.public_port = cfg.port;
    popts.internal_port = cfg.internal_port;
    popts.backend_timeout = std::chrono::milliseconds(cfg.proxy_timeout_ms);
    popts.header_timeout = std::chrono::milliseconds(cfg.proxy_header_timeout_ms);
    popts.max_conns_per_ip = static_cast<size_t>(cfg.proxy_max_conns_per_ip);
    popts.public_fd = given.public_fd;
    popts.internal_fd = given.internal_fd;
    popts.tls_port = cfg.tls_port;
    popts.tls_cert = cfg.tls_cert.string();
    popts.tls_key = cfg.tls_key.string();
    popts.tls_fd = given.https_fd;
    if (!cfg.acme_domains.empty())
      popts.acme_challenge = [c = &challenges](std::string_view token) { return c->find(token); };
    if (webhooks) {
      popts.local_path = cfg.webhooks->path;
      popts.local = [webhooks](const proxy::LocalRequest& r) { return webhooks->handle(r); };
    }
    proxy.emplace(std::move(popts));
    router = std::make_unique<daemon::ProxyRouter>(
        *proxy, std::set<int>{cfg.port, cfg.internal_port, cfg.api_port},
        cfg.internal_port == cfg.port);
  }

  std::unique_ptr<edge::acme::Manager> acme;  // before the proxy goes, the thread that feeds it stops
  if (proxy && !cfg.acme_domains.empty()) {
    try {
      acme = start_acme(cfg, paths.data_dir, challenges, *proxy);
    } catch (const std::exception& e) {
      return fail(1, e.what());
    }
  }

  std::optional<notify::Notifier> notifier;
  if (!cfg.notify.empty() || cfg.github) {
    try {
      notifier.emplace(cfg, paths.data_dir);
    } catch (const config::ConfigError& e) {
      return fail(2, fmt::format("{} (in {})", e.what(), opts.config.string()));
    }
  }

  process::Reaper reaper;
  git::Repository listing = *repo;  // the dashboard's own, for listing revisions
  daemon::Daemon daemon(cfg, paths, std::move(*repo), reaper, *router);
  struct StopListeners {  // webhooks deploy through `daemon`, the notifier listens to it
    triggers::Receiver* webhooks;
    std::optional<notify::Notifier>& notifier;
    ~StopListeners() {
      if (webhooks) webhooks->stop();
      if (notifier) notifier->stop();
    }
  } stop_listeners{webhooks.get(), notifier};
  // Before the server, which uses them until it is gone.
  metrics::Exporter exporter(daemon, proxy ? &*proxy : nullptr);  // counts from before restore()
  ui::Dashboard dashboard(daemon, std::move(listing), security.token, !security.tls.cert.empty());
  ApiServer server(daemon, security);
  server.on_metrics([&exporter] { return exporter.scrape(); });
  server.serve_dashboard(dashboard);
  if (given.api_fd >= 0) {
    server.adopt(given.api_fd, cfg.api_port);
  } else {
    try {
      server.bind(cfg.api_bind, cfg.api_port);
    } catch (const std::exception& e) {
      return fail(1, e.what());
    }
  }
  // After the bind (a second daemon must fail before it touches anything), before
  // serving: clients connecting meanwhile wait in the listen backlog.
  daemon.restore();
  if (notifier) {
    const auto s = daemon.status();
    notifier->start(daemon.events(), s.live_commit, s.live_slot);
  }
  // A given public socket queues clients whether we accept or not: accept, and answer
  // 503 until something is live.
  // So does ACME, which needs the public port to answer its challenges from the start.
  // So do webhooks, which may bring the first deploy.
  if (proxy && (given.public_fd >= 0 || acme || webhooks)) proxy->listen_now();
  if (acme) acme->start();
  if (webhooks)
    webhooks->start([&daemon](const std::string& commit) {
      const auto r = daemon.deploy(commit, {}, {std::chrono::hours(1), {}});
      return r.status == daemon::OpStatus::Ok ? std::string() : r.error;
    });
  if (predecessor) {
    predecessor->ready(kVersion);
    predecessor->wait_go(std::chrono::seconds(10));  // the old daemon stops taking API calls
  }
  Upgrader upgrader(daemon, server, proxy ? &*proxy : nullptr, reaper, start_args(opts, paths.data_dir),
                    data_lock->fd());
  server.on_shutdown([] { kill(getpid(), SIGTERM); });  // main drains, as for SIGTERM
  server.on_upgrade([&] {
    UpgradeAnswer a = upgrader.run();
    if (upgrader.handed_over()) kill(getpid(), SIGTERM);  // main finishes up, after this answer
    return a;
  });
  server.serve();
  log::info("listening on http://{}:{} (mode {}, repo {}, data {}, pid {}){}", cfg.api_bind,
            cfg.api_port, router->mode(), fs::absolute(opts.repo).lexically_normal().string(),
            paths.data_dir.string(), getpid(),
            given.api_fd >= 0 || given.public_fd >= 0 ? " on passed sockets" : "");
  // After an upgrade the old daemon tells systemd this one is the main process.
  if (!predecessor) service::notify_ready(daemon.status_line());
  predecessor.reset();
  // systemd's STATUS= is a listener of the events that can change the line (not of each
  // line of setup output or health probe).
  auto status_to_systemd = daemon.events().subscribe([&daemon](const daemon::Event& e) {
    if (e.kind == daemon::EventKind::Output || e.kind == daemon::EventKind::Health ||
        e.kind == daemon::EventKind::LiveProbe)
      return;
    service::notify_status(daemon.status_line());
  });

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);  // a closed terminal must not orphan the apps
  sigaddset(&signals, SIGUSR2);  // upgrade
  int sig = 0;
  for (;;) {
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGUSR2 && !upgrader.handed_over()) {
      const UpgradeAnswer a = upgrader.run();
      if (a.status != 200) log::info("SIGUSR2: upgrade not done: {}", a.error);
    }
    if (sig != SIGUSR2 || upgrader.handed_over()) break;
  }

  if (upgrader.handed_over()) {
    log::info("handed over to the new daemon (pid {}); finishing the connections this one "
              "still serves", upgrader.successor());
    if (webhooks) webhooks->stop();  // deliveries get 503 here; the new daemon takes them
    std::thread api([&] { server.stop(); });
    if (proxy) proxy->hand_over(Clock::now() + std::chrono::milliseconds(cfg.drain_timeout_ms));
    api.join();
    log::info("stopped; the apps run on under pid {}", upgrader.successor());
    return 0;
  }
  log::info("received {}: stopping the API and draining every slot", strsignal(sig));
  service::notify_stopping();
  daemon.begin_shutdown();
  if (webhooks) webhooks->stop();
  server.stop();
  daemon.shutdown();
  if (size_t left = process::kill_all_descendants(reaper))
    log::info("killed {} leftover process(es) at shutdown", left);
  log::info("stopped");
  return 0;
}

}  // namespace sm::api
