#include "server/server.h"

#include <fmt/format.h>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <functional>
#include <set>
#include <thread>

#include "log/json_text.h"
#include "log/log.h"
#include "process/drain.h"
#include "server/parts.h"
#include "service/sd_notify.h"
#include "version/version.h"

namespace sm::server {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

Server::StopUsers::~StopUsers() {
  if (s.webhooks_) s.webhooks_->stop();  // deploys through the daemon
  for (const auto& h : s.hosted_) h->stop_triggers();
  if (s.notifier_) s.notifier_->stop();  // listens to its events
}

proxy::LocalAnswer Server::hook_of_app(const proxy::LocalRequest& r) const {
  // r.target is kHooksPath, then /NAME/FORGE (the proxy checked the prefix).
  const std::string_view rest = std::string_view(r.target).substr(std::string_view(kHooksPath).size());
  const std::string_view name = rest.starts_with('/') ? rest.substr(1, rest.find_first_of("/?", 1) - 1) : "";
  const auto hooks = hooks_.load();
  if (const auto it = hooks->find(std::string(name)); it != hooks->end()) return it->second->handle(r);
  return {404, log::json_text({{"error", fmt::format("no app named \"{}\" receives webhooks here; post to {}/NAME/"
                                                     "github (or gitlab, gitea, generic) with NAME an app whose own "
                                                     "config has \"webhooks\"",
                                                     std::string(name.substr(0, 64)), kHooksPath)}}),
          0};
}

std::set<int> Server::reserved_ports() const {
  std::set<int> r{cfg_.port, cfg_.internal_port, cfg_.api_port};
  if (cfg_.tls_port) r.insert(cfg_.tls_port);
  return r;
}

void Server::publish() {
  std::vector<app::Listed> list;
  auto hooks = std::make_shared<std::map<std::string, std::shared_ptr<triggers::Receiver>>>();
  for (const auto& h : hosted_) {
    list.push_back(h->listed());
    if (h->webhooks()) (*hooks)[h->name()] = h->webhooks();
  }
  directory_.publish(std::move(list));
  hooks_.store(std::move(hooks));
}

namespace {

/// Runs `each` on every app that runs, 16 at a time (a restore waits for health checks,
/// a stop for drains: the apps should not wait for each other, nor start a thread each).
void for_each_app(const std::vector<std::shared_ptr<Hosted>>& apps, const std::function<void(app::App&)>& each) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < std::min<size_t>(apps.size(), 16); ++i)
    threads.emplace_back([&] {
      for (size_t k; (k = next++) < apps.size();)
        if (const auto& a = apps[k]->app()) each(*a);
    });
  for (auto& t : threads) t.join();
}

}  // namespace

void Server::restore_all(const std::vector<std::shared_ptr<Hosted>>& apps) {
  for_each_app(apps, [](app::App& a) { a.restore(); });
}

void Server::stop_all(const std::vector<std::shared_ptr<Hosted>>& apps) {
  for (const auto& h : apps) h->stop_triggers();  // deliveries get 503; notices stay in the outbox
  for (const auto& h : apps)
    if (h->app()) h->app()->begin_shutdown();
  for_each_app(apps, [](app::App& a) { a.shutdown(); });
}

std::string Server::status_line() const {
  if (single_) return single_->status_line();
  const auto apps = directory_.list();  // not apps_mu_: an upgrade holds it and asks for this line
  size_t live = 0, healthy = 0;
  for (const auto& l : *apps)
    if (l.app) {
      const auto st = l.app->status();
      live += !st.live_commit.empty();
      healthy += st.healthy;
    }
  return fmt::format("{} apps: {} live, {} healthy", apps->size(), live, healthy);
}

Server::Server(const StartOptions& opts, Settings settings, const service::Listeners& given)
    : opts_(opts),
      cfg_(std::move(settings.cfg)),
      server_cfg_(std::move(settings.server)),
      security_(std::move(settings.security)),
      given_(given),
      data_dir_(fs::absolute(opts.data).lexically_normal()),
      data_lock_(lock_data_dir(opts, !server_cfg_, data_dir_)),
      webhooks_(make_webhooks(cfg_, settings.webhook_secret)),
      proxy_(server_cfg_ ? make_proxy(opts, cfg_, given, challenges_, kHooksPath,
                                      [this](const proxy::LocalRequest& r) { return hook_of_app(r); })
             : webhooks_ ? make_proxy(opts, cfg_, given, challenges_, cfg_.webhooks->path,
                                      [w = webhooks_](const proxy::LocalRequest& r) { return w->handle(r); })
                         : make_proxy(opts, cfg_, given, challenges_, "", {})),
      acme_(make_acme(cfg_, data_dir_, challenges_, proxy_.get())),
      notifier_(server_cfg_ ? nullptr : make_notifier(cfg_, opts, data_dir_)),  // a server's apps: each its own
      directory_(server_cfg_.has_value()),
      exporter_(proxy_.get(), server_cfg_.has_value()),
      dashboard_(directory_, security_.token, !security_.tls.cert.empty()),
      api_(directory_, security_),
      upgrader_(directory_, api_, proxy_.get(), reaper_, start_args(opts, data_dir_), data_lock_.fd(),
                [this] { return status_line(); }) {
  if (server_cfg_) {
    for (const auto& w : server_cfg_->warnings) log::info("warning: {}", w);
    for (auto& spec : app_specs(*server_cfg_)) {
      for (const auto& w : spec.warnings) log::info("app {}: warning: {}", spec.entry.name, w);
      const fs::path dir = data_dir_ / "apps" / spec.entry.name;
      hosted_.push_back(
          std::make_shared<Hosted>(std::move(spec), dir, reaper_, proxy_.get(), reserved_ports(), true, &challenges_));
      if (const auto& h = *hosted_.back(); !h.app()) log::info("app {} does not run: {}", h.name(), h.listed().error);
    }
    proxy_->route_hosts(host_routes(hosted_));
  } else {
    hosted_.push_back(std::make_shared<Hosted>(single_spec(opts, cfg_), data_dir_, reaper_, proxy_.get(),
                                               reserved_ports(), false));
    if (!hosted_.front()->app()) throw StartError(1, hosted_.front()->listed().error);
    single_ = hosted_.front()->app().get();
  }
  for (const auto& h : hosted_)
    if (h->app()) exporter_.watch(h->name(), h->app());
  api_.on_metrics([this] { return exporter_.scrape(); });
  api_.serve_dashboard(dashboard_);
  publish();
  api_.on_shutdown([] { kill(getpid(), SIGTERM); });  // wait_for_signal() returns, as for SIGTERM
  api_.on_upgrade([this] {
    api::UpgradeAnswer a;
    {
      std::lock_guard lock(apps_mu_);  // not during a reload
      a = upgrader_.run();
    }
    if (upgrader_.handed_over()) kill(getpid(), SIGTERM);  // main finishes up, after this answer
    return a;
  });
  api_.on_reload([this] { return reload(); });
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
  restore_all(hosted_);
  for (const auto& h : hosted_) h->start_triggers();
  if (notifier_) {
    const auto s = single_->status();
    notifier_->start(single_->events(), s.live_commit, s.live_slot);
  }
  // A passed public socket queues clients whether we accept or not: accept, and answer
  // 503 until something is live. ACME needs the public port for its challenges from
  // the start, and webhooks may bring the first deploy. Several apps: their hosts are
  // answered at once (404 for a host no app has).
  if (proxy_ && (given_.public_fd >= 0 || acme_ || webhooks_ || server_cfg_)) proxy_->listen_now();
  if (acme_) acme_->start();
  if (webhooks_)
    webhooks_->start([this](const std::string& commit) {
      const auto r = single_->deploy(commit, {}, {std::chrono::hours(1), {}});
      return r.status == app::OpStatus::Ok ? std::string() : r.error;
    });
  if (predecessor) {
    predecessor->ready(kVersion);
    predecessor->wait_go(std::chrono::seconds(10));  // the old daemon stops taking API calls
  }
  api_.serve();
  if (server_cfg_)
    log::info("listening on http://{}:{} ({} apps, config {}, data {}, pid {}){}", cfg_.api_bind, cfg_.api_port,
              hosted_.size(), fs::absolute(opts_.config).lexically_normal().string(), data_dir_.string(), getpid(),
              given_.api_fd >= 0 || given_.public_fd >= 0 ? " on passed sockets" : "");
  else
    log::info("listening on http://{}:{} (mode {}, repo {}, data {}, pid {}){}", cfg_.api_bind, cfg_.api_port,
              hosted_.front()->router()->mode(), fs::absolute(opts_.repo).lexically_normal().string(),
              data_dir_.string(), getpid(), given_.api_fd >= 0 || given_.public_fd >= 0 ? " on passed sockets" : "");
  // After an upgrade the old daemon tells systemd this one is the main process.
  if (!predecessor) service::notify_ready(status_line());
  predecessor.reset();
  if (!single_) return;
  // systemd's STATUS= listens to the events that can change the line (not to each line
  // of setup output or health probe).
  status_to_systemd_ = single_->events().subscribe([this](const app::Event& e) {
    if (e.kind == app::EventKind::Output || e.kind == app::EventKind::Health ||
        e.kind == app::EventKind::LiveProbe)
      return;
    service::notify_status(single_->status_line());
  });
}

int Server::wait_for_signal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);   // one app: a closed terminal must not orphan it; several: reload
  sigaddset(&signals, SIGUSR2);  // upgrade
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGUSR2 && !upgrader_.handed_over()) {
      api::UpgradeAnswer a;
      {
        std::lock_guard lock(apps_mu_);  // not during a reload
        a = upgrader_.run();
      }
      if (a.status != 200) log::info("SIGUSR2: upgrade not done: {}", a.error);
    }
    if (sig == SIGHUP && server_cfg_ && !upgrader_.handed_over()) {
      const api::ReloadAnswer a = reload();
      log::info("SIGHUP: {}", a.status == 200 ? "config reloaded" : "config not reloaded: " + a.body.value("error", ""));
      continue;
    }
    if (sig != SIGUSR2 || upgrader_.handed_over()) return sig;
  }
}

void Server::finish_after_hand_over() {
  log::info("handed over to the new daemon (pid {}); finishing the connections this one still serves",
            upgrader_.successor());
  if (webhooks_) webhooks_->stop();  // deliveries get 503 here; the new daemon takes them
  {
    std::lock_guard lock(apps_mu_);
    for (const auto& h : hosted_) h->stop_triggers();
  }
  std::thread api([this] { api_.stop(); });
  if (proxy_) proxy_->hand_over(Clock::now() + std::chrono::milliseconds(cfg_.drain_timeout_ms));
  api.join();
  log::info("stopped; the apps run on under pid {}", upgrader_.successor());
}

void Server::shut_down(int signal) {
  log::info("received {}: stopping the API and draining every slot", strsignal(signal));
  service::notify_stopping();
  std::vector<std::shared_ptr<Hosted>> apps;
  {
    std::lock_guard lock(apps_mu_);  // after a reload that runs, if one does
    apps = hosted_;
  }
  for (const auto& h : apps) {
    h->stop_triggers();
    if (h->app()) h->app()->begin_shutdown();
  }
  if (webhooks_) webhooks_->stop();
  api_.stop();
  stop_all(apps);
  if (size_t left = process::kill_all_descendants(reaper_)) log::info("killed {} leftover process(es) at shutdown", left);
  log::info("stopped");
}

}  // namespace sm::server
