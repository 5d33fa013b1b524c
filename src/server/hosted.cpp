#include "server/hosted.h"

#include <fmt/format.h>

#include <fstream>
#include <iterator>

#include "app/proxy_router.h"
#include "edge/api_token.h"
#include "log/log.h"

namespace sm::server {
namespace fs = std::filesystem;

bool AppSpec::same_app(const AppSpec& o) const {
  const auto& a = entry;
  const auto& b = o.entry;
  auto host_texts = [](const config::AppEntry& e) {
    std::vector<std::string> out;
    for (const auto& h : e.hosts) out.push_back(h.text());
    return out;
  };
  return a.name == b.name && a.repo == b.repo && a.config == b.config && host_texts(a) == host_texts(b) &&
         a.strip_prefix == b.strip_prefix && a.canonical_host == b.canonical_host && error == o.error &&
         file_text == o.file_text;
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

Hosted::Hosted(AppSpec spec, const fs::path& data_dir, process::Reaper& reaper, proxy::Proxy* proxy,
               std::set<int> reserved, bool by_host)
    : spec_(std::move(spec)), data_dir_(data_dir), error_(spec_.error) {
  if (!error_.empty()) return;
  try {
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
  } catch (const std::exception& e) {
    error_ = e.what();
    app_.reset();
    router_.reset();
    webhooks_.reset();
  }
}

void Hosted::start_webhooks() {
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
    routes.push_back(std::move(r));
  }
  return std::make_shared<const hosts::Router>(std::move(routes));
}

}  // namespace sm::server
