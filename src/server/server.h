#pragma once
// The daemon process of one app (what `slot-machine start` runs): its App and
// what is around it: data-directory lock, proxy or direct router, ACME, notifications,
// webhooks, metrics, dashboard, API and upgrade. The members are declared in the order
// they come to life, so they end in the reverse one: nothing goes while a member
// declared after it still uses it.

#include <memory>
#include <optional>

#include "api/server.h"
#include "app/app.h"
#include "app/router.h"
#include "edge/acme/manager.h"
#include "files/dir_lock.h"
#include "git/git.h"
#include "metrics/exporter.h"
#include "notify/notifier.h"
#include "process/reaper.h"
#include "proxy/proxy.h"
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
  /// hands the apps over, the wait ends too (and so does a POST /upgrade's).
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

  const StartOptions opts_;
  const config::Config cfg_;
  const api::ApiSecurity security_;
  const service::Listeners given_;
  const app::Paths paths_;
  git::Library git_library_;
  git::Repository repo_;  // the daemon gets a copy; this one lists revisions for the dashboard
  files::DirLock data_lock_;
  std::shared_ptr<triggers::Receiver> webhooks_;  // before the proxy, which asks it
  edge::acme::Challenges challenges_;             // outlives the proxy, which reads it
  std::unique_ptr<proxy::Proxy> proxy_;           // none with --no-proxy
  std::unique_ptr<app::Router> router_;
  std::unique_ptr<edge::acme::Manager> acme_;  // its thread feeds the proxy: ends first
  std::unique_ptr<notify::Notifier> notifier_;
  process::Reaper reaper_;
  app::App app_;
  StopUsers stop_users_{*this};
  metrics::Exporter exporter_;  // counts from before restore()
  ui::Dashboard dashboard_;
  api::ApiServer api_;
  Upgrader upgrader_;
  app::Events::Subscription status_to_systemd_;
};

}  // namespace sm::server
