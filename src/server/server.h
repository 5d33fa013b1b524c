#pragma once
// The daemon process (what `slot-machine start` runs): its apps (one for a single-app
// config, each app of "apps" for a server config, contract §13) and what is around them:
// data-directory lock, proxy or direct router, ACME, notifications, webhooks, metrics,
// dashboard, API, reload and upgrade. The members are declared in the order they come
// to life, so they end in the reverse one: nothing goes while a member declared after it
// still uses it.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <optional>
#include <vector>

#include "api/server.h"
#include "app/app.h"
#include "app/directory.h"
#include "edge/acme/manager.h"
#include "files/dir_lock.h"
#include "git/git.h"
#include "metrics/exporter.h"
#include "notify/notifier.h"
#include "process/reaper.h"
#include "proxy/proxy.h"
#include "server/hosted.h"
#include "server/settings.h"
#include "server/upgrader.h"
#include "service/listen_fds.h"
#include "service/upgrade.h"
#include "triggers/receiver.h"
#include "ui/dashboard.h"

namespace sm::server {

class Server {
 public:
  /// Opens the repository, locks the data directory, checks or adopts every port and
  /// binds the API: a second daemon fails here, before it touches anything. Nothing is
  /// served yet. Throws StartError.
  Server(const StartOptions& opts, Settings settings, const service::Listeners& given);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Restores the app's state, then serves: the public port at once when a passed
  /// socket, ACME or webhooks need it, ACME, webhooks, the API. Tells `predecessor` (the
  /// daemon this one replaces in an upgrade) or else systemd that it serves.
  void serve(std::optional<service::Predecessor>& predecessor);
  /// Waits for SIGTERM, SIGINT or SIGHUP and returns it. SIGUSR2 upgrades; when that
  /// hands the apps over, the wait ends too (and so does a POST /upgrade's). With a
  /// server config SIGHUP reloads it instead.
  int wait_for_signal();
  bool handed_over() const { return upgrader_.handed_over(); }
  /// After a hand-over: finishes the connections this process still serves; the apps
  /// run on under the new daemon.
  void finish_after_hand_over();
  /// Stops after `signal`: the API, webhooks, every slot drained, leftovers killed.
  void shut_down(int signal);

 private:
  /// Stops the triggers and listeners that use the daemon from threads of their own,
  /// before it goes (declared right after it).
  struct StopUsers {
    Server& s;
    ~StopUsers();
  };

  /// POST /reload, `slot-machine reload`, SIGHUP (reload.cpp): re-reads a server
  /// config; apps added start, apps removed are drained and stopped, an app whose
  /// settings changed is taken over by a new App that adopts its running processes,
  /// the others are not touched. 400 and nothing changes when the new config is invalid.
  api::ReloadAnswer reload();
  /// The apps as the API lists them, published after each change.
  void publish();
  /// The ports an app process is never given.
  std::set<int> reserved_ports() const;
  /// Restores, or drains and stops, `apps`, several at a time.
  static void restore_all(const std::vector<std::shared_ptr<Hosted>>& apps);
  static void stop_all(const std::vector<std::shared_ptr<Hosted>>& apps);
  /// A server's webhooks: the delivery for kHooksPath/NAME/FORGE handed to app NAME's
  /// receiver (404 when it has none). On the proxy's event loop: never blocks.
  proxy::LocalAnswer hook_of_app(const proxy::LocalRequest& r) const;
  /// One line for systemd's STATUS=.
  std::string status_line() const;

  const StartOptions opts_;
  const config::Config cfg_;  // a single app's config, or the server's fields of a server config
  const std::optional<config::ServerConfig> server_cfg_;  // a server config: its apps as started
  const api::ApiSecurity security_;
  const service::Listeners given_;
  const std::filesystem::path data_dir_;
  git::Library git_library_;
  files::DirLock data_lock_;
  std::shared_ptr<triggers::Receiver> webhooks_;  // before the proxy, which asks it
  // A server's apps' webhook receivers by name, published with the directory and read by
  // the proxy's loop without a lock (before the proxy too).
  std::atomic<std::shared_ptr<const std::map<std::string, std::shared_ptr<triggers::Receiver>>>> hooks_{
      std::make_shared<const std::map<std::string, std::shared_ptr<triggers::Receiver>>>()};
  edge::acme::Challenges challenges_;             // outlives the proxy, which reads it
  std::unique_ptr<proxy::Proxy> proxy_;           // none with --no-proxy
  std::unique_ptr<edge::acme::Manager> acme_;  // its thread feeds the proxy: ends first
  std::unique_ptr<notify::Notifier> notifier_;
  process::Reaper reaper_;
  app::Directory directory_;
  mutable std::mutex apps_mu_;                  // guards hosted_; held by a reload throughout
  std::vector<std::shared_ptr<Hosted>> hosted_;  // in the config's order
  app::App* single_ = nullptr;                   // a single-app config's App
  StopUsers stop_users_{*this};
  metrics::Exporter exporter_;  // counts from before restore()
  ui::Dashboard dashboard_;
  api::ApiServer api_;
  Upgrader upgrader_;
  app::Events::Subscription status_to_systemd_;
};

}  // namespace sm::server
