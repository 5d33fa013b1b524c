#include "server/hosted.h"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "app/proxy_router.h"
#include "edge/api_token.h"
#include "log/log.h"

namespace sm::server {
namespace fs = std::filesystem;

bool AppSpec::same_settings(const AppSpec& o) const {
  const auto& a = entry;
  const auto& b = o.entry;
  return a.name == b.name && a.repo == b.repo && a.config == b.config && a.user == b.user && a.group == b.group &&
         error == o.error && file_text == o.file_text;
}

bool AppSpec::same_app(const AppSpec& o) const {
  return same_settings(o) && entry.hosts == o.entry.hosts && entry.strip_prefix == o.entry.strip_prefix &&
         entry.canonical_host == o.entry.canonical_host;
}

std::vector<AppSpec> app_specs(const config::ServerConfig& server) {
  std::vector<AppSpec> out;
  for (const auto& entry : server.apps) {
    AppSpec s;
    s.entry = entry;
    try {
      auto loaded = config::load_app_file(entry, server.server);
      s.cfg = std::move(loaded.config);
      s.warnings = std::move(loaded.warnings);
      if (s.cfg.webhooks && s.cfg.webhooks->path != config::Config::Webhooks{}.path)
        s.warnings.push_back(fmt::format("\"webhooks.path\" ignored: an app of a server config receives its "
                                         "webhooks at {}/{}/FORGE",
                                         kHooksPath, entry.name));
    } catch (const config::ConfigError& e) {
      s.error = e.what();
    }
    if (std::ifstream in(entry.config, std::ios::binary); in) s.file_text.assign(std::istreambuf_iterator<char>(in), {});
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

std::unique_ptr<app::Router> make_router(const AppSpec& spec, proxy::Proxy* proxy, std::set<int> reserved,
                                         bool by_host) {
  const auto& cfg = spec.cfg;
  if (!proxy) return std::make_unique<app::DirectRouter>(app::Ports{cfg.port, cfg.internal_port});
  return std::make_unique<app::ProxyRouter>(*proxy, std::move(reserved), cfg.internal_port == cfg.port,
                                            by_host ? spec.entry.name : std::string());
}

}  // namespace

namespace {

/// The names an app's ACME certificate is for: its exact hosts, once each (a wildcard
/// cannot be proved over HTTP-01; a path prefix is not part of a name).
std::vector<std::string> acme_names(const config::AppEntry& e) {
  std::vector<std::string> out;
  for (const auto& h : e.hosts)
    if (!h.wildcard() && std::find(out.begin(), out.end(), h.host) == out.end()) out.push_back(h.host);
  return out;
}

}  // namespace

Hosted::Hosted(AppSpec spec, const fs::path& data_dir, process::Reaper& reaper, proxy::Proxy* proxy,
               std::set<int> reserved, bool by_host, edge::acme::Challenges* challenges)
    : spec_(std::move(spec)), data_dir_(data_dir), error_(spec_.error) {
  if (!error_.empty()) return;
  try {
    if (by_host) run_as_user();
    git::Repository repo = git::Repository::open(spec_.entry.repo);
    std::error_code ec;
    fs::create_directories(data_dir_, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot create {}: {}", data_dir_.string(), ec.message()));
    router_ = make_router(spec_, proxy, std::move(reserved), by_host);
    if (by_host && spec_.cfg.webhooks) {
      const std::string secret = edge::read_secret_file(
          spec_.cfg.webhooks->secret_file, "webhooks.secret_file", "the webhook secret of app " + name(),
          "write the secret your forge signs with into it and chmod 600 it");
      webhooks_ = std::make_shared<triggers::Receiver>(std::string(kHooksPath) + "/" + name(), secret,
                                                       spec_.cfg.webhooks->branch, name());
    }
    app_ = std::make_shared<app::App>(spec_.cfg, app::Paths{data_dir_, by_host ? spec_.entry.name : std::string()},
                                      std::move(repo), reaper, *router_);
    if (by_host && proxy && challenges && spec_.cfg.acme) make_acme(*proxy, *challenges);
    if (by_host && !spec_.cfg.notify.empty())
      notifier_ = std::make_unique<notify::Notifier>(spec_.cfg, data_dir_, notify::post, name());
  } catch (const std::exception& e) {
    error_ = e.what();
    notifier_.reset();
    acme_.reset();
    app_.reset();
    router_.reset();
    webhooks_.reset();
  }
}

void Hosted::make_acme(proxy::Proxy& proxy, edge::acme::Challenges& challenges) {
  const auto names = acme_names(spec_.entry);
  if (names.empty()) {
    log::info("app {}: no certificate: its hosts are all wildcards, which ACME's HTTP-01 cannot prove; its HTTPS "
              "answers with tls.cert when there is one",
              name());
    return;
  }
  edge::acme::ManagerOptions o;
  o.settings = {spec_.cfg.acme_directory_url, spec_.cfg.acme_ca_file, spec_.cfg.acme_email};
  o.domains = names;
  o.dir = data_dir_ / "tls";
  o.challenges = &challenges;
  o.install = [&proxy, name = name()](const fs::path& cert, const fs::path& key) {
    proxy.use_app_certificate(name, cert, key);
  };
  o.log_name = name();
  acme_ = std::make_unique<edge::acme::Manager>(std::move(o));  // throws when <data>/apps/NAME/tls is unusable
  if (auto files = acme_->usable()) {
    try {
      proxy.use_app_certificate(name(), files->first.string(), files->second.string());
      log::info("app {}: HTTPS for {} with the certificate in {}", name(), fmt::join(names, ", "),
                files->first.string());
      return;
    } catch (const std::exception& e) {
      log::info("app {}: ACME: the stored certificate cannot be used ({}); getting a new one", name(), e.what());
    }
  }
  log::info("app {}: HTTPS for {}: no certificate yet, asking {}", name(), fmt::join(names, ", "),
            spec_.cfg.acme_directory_url);
}

void Hosted::stop_triggers() {
  if (webhooks_) webhooks_->stop();
  if (notifier_) notifier_->stop();
}

void Hosted::start_triggers() {
  if (acme_) acme_->start();
  if (notifier_ && app_) {
    const auto s = app_->status();
    notifier_->start(app_->events(), s.live_commit, s.live_slot);
  }
  if (!webhooks_ || !app_) return;
  // A weak handle: a receiver kept by a reader of the server's hook table must not keep
  // the App (and what it refers to) alive.
  webhooks_->start([weak = std::weak_ptr<app::App>(app_)](const std::string& commit) {
    const auto app = weak.lock();
    if (!app) return std::string("the app was removed");
    const auto r = app->deploy(commit, {}, {std::chrono::hours(1), {}});
    return r.status == app::OpStatus::Ok ? std::string() : r.error;
  });
}

void Hosted::run_as_user() {
  const auto& e = spec_.entry;
  if (e.user.empty()) {
    if (geteuid() == 0)
      throw std::runtime_error(fmt::format(
          "app {} would run as root: set its \"user\" to the system user it runs as (or \"user\": \"root\" to "
          "mean it)",
          name()));
    return;
  }
  if (e.user == "root" && e.group.empty()) return;  // as the daemon, said so
  std::vector<char> buf(16384);
  passwd pw{}, *user = nullptr;
  if (getpwnam_r(e.user.c_str(), &pw, buf.data(), buf.size(), &user) != 0 || !user)
    throw std::runtime_error(fmt::format("app {}: no system user \"{}\"; create it (useradd --system {}) or fix "
                                         "\"user\"",
                                         name(), e.user, e.user));
  gid_t gid = user->pw_gid;
  if (!e.group.empty()) {
    std::vector<char> gbuf(16384);
    group gr{}, *found = nullptr;
    if (getgrnam_r(e.group.c_str(), &gr, gbuf.data(), gbuf.size(), &found) != 0 || !found)
      throw std::runtime_error(fmt::format("app {}: no system group \"{}\"; create it or fix \"group\"", name(),
                                           e.group));
    gid = found->gr_gid;
  }
  if (geteuid() != 0 && user->pw_uid != geteuid())
    throw std::runtime_error(fmt::format("app {}: only a daemon running as root can run it as \"{}\"", name(),
                                         e.user));
  if (geteuid() != 0) return;  // its own user: nothing to change
  spec_.cfg.run_uid = static_cast<int>(user->pw_uid);
  spec_.cfg.run_gid = static_cast<int>(gid);
}

app::Listed Hosted::listed() const {
  app::Listed l;
  l.name = spec_.entry.name;
  for (const auto& h : spec_.entry.hosts) l.hosts.push_back(h.text());
  l.repo = spec_.entry.repo;
  l.app = app_;
  l.error = error_;
  return l;
}

std::shared_ptr<const hosts::Router> host_routes(const std::vector<std::shared_ptr<Hosted>>& apps) {
  std::vector<hosts::AppRoutes> routes;
  for (const auto& h : apps) {
    const bool runs = h->app() != nullptr;
    hosts::AppRoutes r;
    r.name = h->name();
    if (runs) r.hosts = h->spec().entry.hosts;
    r.strip_prefix = h->spec().entry.strip_prefix;
    if (runs) r.canonical_host = h->spec().entry.canonical_host;
    r.max_request_body = static_cast<uint64_t>(h->spec().cfg.max_request_body);
    r.compress = h->spec().cfg.compress;
    routes.push_back(std::move(r));
  }
  return std::make_shared<const hosts::Router>(std::move(routes));
}

}  // namespace sm::server
