#include "server/server.h"

#include <fmt/format.h>

#include <unistd.h>

#include <csignal>
#include <set>
#include <thread>

#include "app/proxy_router.h"
#include "log/log.h"
#include "process/drain.h"
#include "process/port_owner.h"
#include "service/sd_notify.h"
#include "version/version.h"

namespace sm::server {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

/// The arguments that start this same daemon again (absolute paths: same meaning).
std::vector<std::string> start_args(const StartOptions& o, const fs::path& data_dir) {
  std::vector<std::string> a{"start", "--config", fs::absolute(o.config).lexically_normal().string(),
                             "--repo", fs::absolute(o.repo).lexically_normal().string(),
                             "--data", data_dir.string()};
  if (o.api_port) a.insert(a.end(), {"--port", std::to_string(*o.api_port)});
  if (o.no_proxy) a.push_back("--no-proxy");
  return a;
}

git::Repository open_repo(const StartOptions& opts) {
  try {
    return git::Repository::open(fs::absolute(opts.repo));
  } catch (const git::GitError& e) {
    throw StartError(1, fmt::format("{}; pass --repo DIR with the app's git repository", e.what()));
  }
}

/// Creates the data directory and takes its lock: before any port is looked at, as a
/// second daemon on this data directory would adopt the first one's apps and kill them
/// when it stops.
files::DirLock lock_data_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw StartError(1, fmt::format("cannot create the data directory {}: {}; pass --data DIR", dir.string(),
                                    ec.message()));
  try {
    return files::DirLock::acquire(dir);
  } catch (const files::DirLock::Held& e) {
    throw StartError(2, e.what());
  } catch (const std::exception& e) {
    throw StartError(1, e.what());
  }
}

std::shared_ptr<triggers::Receiver> make_webhooks(const config::Config& cfg, const std::string& secret) {
  if (!cfg.webhooks) return nullptr;
  return std::make_shared<triggers::Receiver>(cfg.webhooks->path, secret, cfg.webhooks->branch);
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

/// The proxy, unless --no-proxy. It listens only from the first deploy on, but a port
/// that is taken now is an error now (StartError), not at the first deploy.
std::unique_ptr<proxy::Proxy> make_proxy(const StartOptions& opts, const config::Config& cfg,
                                         const service::Listeners& given, edge::acme::Challenges& challenges,
                                         const std::shared_ptr<triggers::Receiver>& webhooks) {
  if (opts.no_proxy) return nullptr;
  if (cfg.tls_port && given.https_fd < 0 && !app::port_is_free(cfg.tls_port))
    throw StartError(1, port_taken(cfg.tls_port, "HTTPS needs it (\"tls.port\"", opts.config));
  for (int p : {cfg.port, cfg.internal_port})
    if (!(p == cfg.port ? given.public_fd >= 0 : given.internal_fd >= 0) && !app::port_is_free(p))
      throw StartError(1, port_taken(p, "the proxy needs it (\"port\"/\"internal_port\"", opts.config));
  proxy::Options o;
  o.public_port = cfg.port;
  o.internal_port = cfg.internal_port;
  o.backend_timeout = std::chrono::milliseconds(cfg.proxy_timeout_ms);
  o.header_timeout = std::chrono::milliseconds(cfg.proxy_header_timeout_ms);
  o.max_conns_per_ip = static_cast<size_t>(cfg.proxy_max_conns_per_ip);
  o.public_fd = given.public_fd;
  o.internal_fd = given.internal_fd;
  o.tls_port = cfg.tls_port;
  o.tls_cert = cfg.tls_cert.string();
  o.tls_key = cfg.tls_key.string();
  o.tls_fd = given.https_fd;
  if (!cfg.acme_domains.empty())
    o.acme_challenge = [c = &challenges](std::string_view token) { return c->find(token); };
  if (webhooks) {
    o.local_path = cfg.webhooks->path;
    o.local = [webhooks](const proxy::LocalRequest& r) { return webhooks->handle(r); };
  }
  return std::make_unique<proxy::Proxy>(std::move(o));
}

std::unique_ptr<app::Router> make_router(const config::Config& cfg, proxy::Proxy* proxy) {
  if (!proxy) return std::make_unique<app::DirectRouter>(app::Ports{cfg.port, cfg.internal_port});
  return std::make_unique<app::ProxyRouter>(*proxy, std::set<int>{cfg.port, cfg.internal_port, cfg.api_port},
                                               cfg.internal_port == cfg.port);
}

/// ACME (tls.acme): the certificate stored under <data>/tls when it still serves, and
/// the thread that obtains or renews it (started by serve()).
std::unique_ptr<edge::acme::Manager> make_acme(const config::Config& cfg, const fs::path& data_dir,
                                               edge::acme::Challenges& challenges, proxy::Proxy* proxy) {
  if (!proxy || cfg.acme_domains.empty()) return nullptr;
  edge::acme::ManagerOptions o;
  o.settings = {cfg.acme_directory_url, cfg.acme_ca_file, cfg.acme_email};
  o.domains = cfg.acme_domains;
  o.dir = data_dir / "tls";
  o.challenges = &challenges;
  o.install = [proxy](const fs::path& cert, const fs::path& key) { proxy->use_certificate(cert, key); };
  std::unique_ptr<edge::acme::Manager> m;
  try {
    m = std::make_unique<edge::acme::Manager>(std::move(o));
  } catch (const std::exception& e) {
    throw StartError(1, e.what());  // <data>/tls is unusable
  }
  if (auto files = m->usable()) {
    try {
      proxy->use_certificate(files->first, files->second);
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

std::unique_ptr<notify::Notifier> make_notifier(const config::Config& cfg, const StartOptions& opts,
                                                const fs::path& data_dir) {
  if (cfg.notify.empty() && !cfg.github) return nullptr;
  try {
    return std::make_unique<notify::Notifier>(cfg, data_dir);
  } catch (const config::ConfigError& e) {
    throw StartError(2, fmt::format("{} (in {})", e.what(), opts.config.string()));
  }
}

}  // namespace

Server::StopUsers::~StopUsers() {
  if (s.webhooks_) s.webhooks_->stop();  // deploys through the daemon
  if (s.notifier_) s.notifier_->stop();  // listens to its events
}

Server::Server(const StartOptions& opts, Settings settings, const service::Listeners& given)
    : opts_(opts),
      cfg_(std::move(settings.cfg)),
      security_(std::move(settings.security)),
      given_(given),
      paths_{fs::absolute(opts.data).lexically_normal()},
      repo_(open_repo(opts)),
      data_lock_(lock_data_dir(paths_.data_dir)),
      webhooks_(make_webhooks(cfg_, settings.webhook_secret)),
      proxy_(make_proxy(opts, cfg_, given, challenges_, webhooks_)),
      router_(make_router(cfg_, proxy_.get())),
      acme_(make_acme(cfg_, paths_.data_dir, challenges_, proxy_.get())),
      notifier_(make_notifier(cfg_, opts, paths_.data_dir)),
      app_(cfg_, paths_, repo_, reaper_, *router_),
      exporter_(app_, proxy_.get()),
      dashboard_(app_, repo_, security_.token, !security_.tls.cert.empty()),
      api_(app_, security_),
      upgrader_(app_, api_, proxy_.get(), reaper_, start_args(opts, paths_.data_dir), data_lock_.fd()) {
  api_.on_metrics([this] { return exporter_.scrape(); });
  api_.serve_dashboard(dashboard_);
  api_.on_shutdown([] { kill(getpid(), SIGTERM); });  // wait_for_signal() returns, as for SIGTERM
  api_.on_upgrade([this] {
    api::UpgradeAnswer a = upgrader_.run();
    if (upgrader_.handed_over()) kill(getpid(), SIGTERM);  // main finishes up, after this answer
    return a;
  });
  if (given_.api_fd >= 0) {
    api_.adopt(given_.api_fd, cfg_.api_port);
    return;
  }
  try {
    api_.bind(cfg_.api_bind, cfg_.api_port);
  } catch (const std::exception& e) {
    throw StartError(1, e.what());
  }
}

void Server::serve(std::optional<service::Predecessor>& predecessor) {
  // After the bind (a second daemon has failed by now), before serving: clients that
  // connect meanwhile wait in the listen backlog.
  app_.restore();
  if (notifier_) {
    const auto s = app_.status();
    notifier_->start(app_.events(), s.live_commit, s.live_slot);
  }
  // A passed public socket queues clients whether we accept or not: accept, and answer
  // 503 until something is live. ACME needs the public port for its challenges from
  // the start, and webhooks may bring the first deploy.
  if (proxy_ && (given_.public_fd >= 0 || acme_ || webhooks_)) proxy_->listen_now();
  if (acme_) acme_->start();
  if (webhooks_)
    webhooks_->start([this](const std::string& commit) {
      const auto r = app_.deploy(commit, {}, {std::chrono::hours(1), {}});
      return r.status == app::OpStatus::Ok ? std::string() : r.error;
    });
  if (predecessor) {
    predecessor->ready(kVersion);
    predecessor->wait_go(std::chrono::seconds(10));  // the old daemon stops taking API calls
  }
  api_.serve();
  log::info("listening on http://{}:{} (mode {}, repo {}, data {}, pid {}){}", cfg_.api_bind, cfg_.api_port,
            router_->mode(), fs::absolute(opts_.repo).lexically_normal().string(), paths_.data_dir.string(),
            getpid(), given_.api_fd >= 0 || given_.public_fd >= 0 ? " on passed sockets" : "");
  // After an upgrade the old daemon tells systemd this one is the main process.
  if (!predecessor) service::notify_ready(app_.status_line());
  predecessor.reset();
  // systemd's STATUS= listens to the events that can change the line (not to each line
  // of setup output or health probe).
  status_to_systemd_ = app_.events().subscribe([this](const app::Event& e) {
    if (e.kind == app::EventKind::Output || e.kind == app::EventKind::Health ||
        e.kind == app::EventKind::LiveProbe)
      return;
    service::notify_status(app_.status_line());
  });
}

int Server::wait_for_signal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);   // a closed terminal must not orphan the apps
  sigaddset(&signals, SIGUSR2);  // upgrade
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGUSR2 && !upgrader_.handed_over()) {
      const api::UpgradeAnswer a = upgrader_.run();
      if (a.status != 200) log::info("SIGUSR2: upgrade not done: {}", a.error);
    }
    if (sig != SIGUSR2 || upgrader_.handed_over()) return sig;
  }
}

void Server::finish_after_hand_over() {
  log::info("handed over to the new daemon (pid {}); finishing the connections this one still serves",
            upgrader_.successor());
  if (webhooks_) webhooks_->stop();  // deliveries get 503 here; the new daemon takes them
  std::thread api([this] { api_.stop(); });
  if (proxy_) proxy_->hand_over(Clock::now() + std::chrono::milliseconds(cfg_.drain_timeout_ms));
  api.join();
  log::info("stopped; the apps run on under pid {}", upgrader_.successor());
}

void Server::shut_down(int signal) {
  log::info("received {}: stopping the API and draining every slot", strsignal(signal));
  service::notify_stopping();
  app_.begin_shutdown();
  if (webhooks_) webhooks_->stop();
  api_.stop();
  app_.shutdown();
  if (size_t left = process::kill_all_descendants(reaper_)) log::info("killed {} leftover process(es) at shutdown", left);
  log::info("stopped");
}

}  // namespace sm::server
