// Server::reload (contract §13): a server config read again and applied app by app.

#include <fmt/format.h>

#include "log/log.h"
#include "server/server.h"

namespace sm::server {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// The server's fields a reload cannot apply (the proxy and the API listen on them):
/// named in the answer, applied by `slot-machine upgrade`.
std::vector<std::string> unapplied(const config::Config& a, const config::Config& b) {
  std::vector<std::string> out;
  if (a.port != b.port) out.push_back("port");
  if (a.internal_port != b.internal_port) out.push_back("internal_port");
  if (a.tls_port != b.tls_port || a.tls_cert != b.tls_cert || a.tls_key != b.tls_key ||
      a.acme != b.acme || a.acme_domains != b.acme_domains || a.acme_email != b.acme_email ||
      a.acme_directory_url != b.acme_directory_url)
    out.push_back("tls");
  if (a.api_port != b.api_port) out.push_back("api_port");
  if (a.api_bind != b.api_bind) out.push_back("api_bind");
  if (a.api_tls_cert != b.api_tls_cert || a.api_tls_key != b.api_tls_key) out.push_back("api_tls");
  if (a.api_token_file != b.api_token_file) out.push_back("api_token_file");
  if (a.proxy_timeout_ms != b.proxy_timeout_ms || a.proxy_header_timeout_ms != b.proxy_header_timeout_ms ||
      a.proxy_max_conns_per_ip != b.proxy_max_conns_per_ip)
    out.push_back("proxy_*");
  return out;
}

}  // namespace

api::ReloadAnswer Server::reload() {
  if (!server_cfg_)
    return {400, {{"success", false},
                  {"error", fmt::format("{} is one app's config, not a server config with \"apps\": restart the daemon "
                                        "or run `slot-machine upgrade` to read it again",
                                        opts_.config.string())}}};
  std::lock_guard lock(apps_mu_);
  if (upgrader_.handed_over()) return {503, {{"success", false}, {"error", "this daemon has handed over to a newer one"}}};
  config::ServerConfig next;
  try {
    next = config::load_server(opts_.config);
  } catch (const config::ConfigError& e) {
    log::info("reload refused: {} (in {}); nothing changed", e.what(), opts_.config.string());
    return {400, {{"success", false}, {"error", fmt::format("{} (in {}); nothing changed", e.what(), opts_.config.string())}}};
  }
  auto specs = app_specs(next);

  // Sort every app into kept (maybe routed anew), replaced (its settings changed: a new
  // App adopts its processes), added and removed.
  std::vector<std::shared_ptr<Hosted>> now, added, removed, replaced_old;
  json changes{{"added", json::array()}, {"removed", json::array()}, {"changed", json::array()},
               {"rerouted", json::array()}, {"unchanged", json::array()}};
  auto find_old = [&](const std::string& name) -> std::shared_ptr<Hosted> {
    for (const auto& h : hosted_)
      if (h->name() == name) return h;
    return nullptr;
  };
  // An app whose settings changed hands its processes to its successor: none of its
  // operations may run meanwhile.
  std::vector<std::unique_lock<std::mutex>> held;
  for (const auto& spec : specs) {
    const auto old = find_old(spec.entry.name);
    if (!old || !old->app() || old->spec().same_settings(spec)) continue;
    held.push_back(old->app()->hold_operations());
    if (!held.back())
      return {409, {{"success", false},
                    {"error", fmt::format("app {} has an operation running (or waiting), and its settings changed: "
                                          "reload when it has finished; nothing changed",
                                          spec.entry.name)}}};
  }
  for (auto& spec : specs) {
    const std::string name = spec.entry.name;
    for (const auto& w : spec.warnings) log::info("app {}: warning: {}", name, w);
    const auto old = find_old(name);
    // An app that did not run is tried again even when its entry and file are the same:
    // what was wrong may have been outside them (a repository or user created since).
    if (old && old->app() && old->spec().same_app(spec)) {
      now.push_back(old);
      changes["unchanged"].push_back(name);
      continue;
    }
    if (old && old->app() && old->spec().same_settings(spec)) {  // only how it is reached changed
      old->reroute(spec.entry);
      now.push_back(old);
      changes["rerouted"].push_back(name);
      continue;
    }
    auto h = std::make_shared<Hosted>(std::move(spec), data_dir_ / "apps" / name, reaper_, proxy_.get(),
                                      reserved_ports(), true, &challenges_);
    if (!h->app()) log::info("app {} does not run: {}", name, h->listed().error);
    if (old) {
      old->stop_triggers();  // its outbox and webhooks are the new one's from now on
      if (old->app() && h->app()) {
        old->app()->hand_over();  // its processes run on, adopted by the new App
        replaced_old.push_back(old);
      } else if (old->app()) {
        removed.push_back(old);  // nothing can adopt its processes: drained and stopped
      } else {
        replaced_old.push_back(old);
      }
      changes["changed"].push_back(name);
    } else {
      changes["added"].push_back(name);
    }
    added.push_back(h);
    now.push_back(h);
  }
  for (const auto& h : hosted_)
    if (std::none_of(now.begin(), now.end(), [&](const auto& n) { return n->name() == h->name(); })) {
      removed.push_back(h);
      changes["removed"].push_back(h->name());
    }
  held.clear();

  // Route first (a removed app's hosts answer 404 from now on, an added app's 503 until
  // it is live), then bring the new apps up and drain the removed ones.
  hosted_ = now;
  for (const auto& h : removed) exporter_.forget(h->name());
  for (const auto& h : added)
    if (h->app()) exporter_.watch(h->name(), h->app());
  proxy_->route_hosts(host_routes(hosted_));
  publish();
  std::thread stopping([&] { stop_all(removed); });
  restore_all(added);
  for (const auto& h : added) h->start_triggers();
  stopping.join();
  removed.clear();
  replaced_old.clear();

  const auto later = unapplied(cfg_, next.server);
  json body{{"success", true}, {"apps", changes}};
  if (!later.empty())
    body["not_applied"] = fmt::format("{} changed: `slot-machine upgrade` applies it (a reload keeps the ports and "
                                      "the API as they are)",
                                      fmt::join(later, ", "));
  log::info("reloaded {}: {} added, {} removed, {} changed, {} routed anew, {} unchanged", opts_.config.string(),
            changes["added"].size(), changes["removed"].size(), changes["changed"].size(),
            changes["rerouted"].size(), changes["unchanged"].size());
  return {200, body};
}

}  // namespace sm::server
