#pragma once
// One app the server runs (contract §13): its entry in the config, its own settings,
// its data directory, its repository, its router to the proxy, and its App. An app
// whose own file or repository is unusable is hosted with its error and no App: the
// API lists it, the proxy answers its hosts 404, the other apps run.

#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "app/app.h"
#include "app/directory.h"
#include "app/router.h"
#include "config/apps.h"
#include "edge/acme/manager.h"
#include "git/git.h"
#include "hosts/route.h"
#include "notify/notifier.h"
#include "process/reaper.h"
#include "proxy/proxy.h"
#include "triggers/receiver.h"

namespace sm::server {

/// What an app of a server config is set up from; two equal specs are the same app
/// (a reload keeps it untouched).
struct AppSpec {
  config::AppEntry entry;
  config::Config cfg;                 // its own file, with the server's fields
  std::vector<std::string> warnings;  // from its own file
  std::string error;                  // its own file is unusable ("" when it is fine)
  std::string file_text;              // what its own file held, to tell a change
  /// `o` runs the same app: all but how it is reached (hosts, prefix, canonical host).
  bool same_settings(const AppSpec& o) const;
  /// `o` is the same app reached the same way.
  bool same_app(const AppSpec& o) const;
};

/// Reads every app's own file of `server`: an unusable one gives its spec an error.
std::vector<AppSpec> app_specs(const config::ServerConfig& server);

class Hosted {
 public:
  /// Opens the repository and builds the App (not restored yet); on failure the app is
  /// hosted with the error. `proxy` null: direct mode (a single-app config only).
  /// `challenges`: with "tls.acme" in a server config, where the app's ACME manager puts
  /// its HTTP-01 answers (the proxy serves them); its certificate is obtained for its exact
  /// hosts and kept under <data>/apps/NAME/tls.
  Hosted(AppSpec spec, const std::filesystem::path& data_dir, process::Reaper& reaper, proxy::Proxy* proxy,
         std::set<int> reserved, bool by_host, edge::acme::Challenges* challenges = nullptr);
  Hosted(const Hosted&) = delete;
  Hosted& operator=(const Hosted&) = delete;

  const std::string& name() const { return spec_.entry.name; }
  const AppSpec& spec() const { return spec_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  /// Null when the app could not be set up (listed().error says why).
  const std::shared_ptr<app::App>& app() const { return app_; }
  app::Router* router() const { return router_.get(); }
  /// The app's webhook receiver (its own file has "webhooks"), at
  /// /.slot-machine/hooks/NAME/FORGE; null without.
  const std::shared_ptr<triggers::Receiver>& webhooks() const { return webhooks_; }
  /// After the App is restored: deploys accepted webhook deliveries, obtains or renews the
  /// app's certificate (tls.acme), sends its notifications (notify).
  void start_triggers();
  /// Webhook deliveries get 503 and notifications stop (what is undelivered stays in the
  /// app's outbox); before the App stops. Idempotent.
  void stop_triggers();
  app::Listed listed() const;
  /// A reload changed only how the app is reached (hosts, strip_prefix, canonical_host).
  void reroute(config::AppEntry entry) { spec_.entry = std::move(entry); }

 private:
  /// The uid and gid the app's "user" and "group" name, into spec_.cfg; throws saying
  /// why the app cannot run (root without "user", no such user, not root).
  void run_as_user();
  /// The app's ACME manager, with the certificate it has stored installed.
  void make_acme(proxy::Proxy& proxy, edge::acme::Challenges& challenges);

  AppSpec spec_;
  const std::filesystem::path data_dir_;  // <data>/apps/NAME (<data> for a single-app config)
  std::string error_;
  std::unique_ptr<app::Router> router_;
  std::shared_ptr<app::App> app_;
  std::shared_ptr<triggers::Receiver> webhooks_;  // after the App: stopped before it goes
  std::unique_ptr<edge::acme::Manager> acme_;     // its thread feeds the proxy
  std::unique_ptr<notify::Notifier> notifier_;    // listens to the App's events
};

/// Where a server's apps receive webhooks: kHooksPath/NAME/FORGE.
inline constexpr const char* kHooksPath = "/.slot-machine/hooks";

/// The host routes of these apps, for the proxy. An app that does not run keeps no
/// hosts: they answer 404.
std::shared_ptr<const hosts::Router> host_routes(const std::vector<std::shared_ptr<Hosted>>& apps);

}  // namespace sm::server
