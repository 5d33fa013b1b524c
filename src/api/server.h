#pragma once
// The daemon's HTTP API (cpp-httplib): parses requests, calls the App, maps its
// results to status codes and JSON bodies.

#include <atomic>
#include <functional>
#include <thread>
#include <memory>
#include <optional>
#include <string>

#include "api/admission.h"
#include "api/log_follow.h"
#include "app/app.h"
#include "app/directory.h"
#include "edge/tls_files.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace sm::ui {
class Dashboard;
}

namespace sm::api {

/// Request bodies above this size are refused with 413.
inline constexpr size_t kMaxBodyBytes = 1 << 20;

/// Who may use the API and how it is spoken (contract §8).
struct ApiSecurity {
  std::optional<std::string> token;  // every request but GET / needs "Bearer <token>"
  edge::CertFiles tls;               // cert and key (checked already): HTTPS; empty: HTTP
};

/// What POST /upgrade answered: 200 with the new daemon's pid and version, or 409/500
/// with the reason.
struct UpgradeAnswer {
  int status = 500;
  std::string error;
  int pid = 0;
  std::string version;
};

/// What POST /reload answered: 200 with what changed, or 400 (nothing changed) with why.
struct ReloadAnswer {
  int status = 500;
  nlohmann::json body;
};

/// ApiServer serves contract §5 (and §7's /upgrade, §13's /apps) for the apps of
/// `apps`: every app-scoped route under /apps/NAME/, and unprefixed for the only app.
/// bind() or adopt() a listening socket, then serve() on its own thread; stop() from
/// another.
class ApiServer {
 public:
  explicit ApiServer(const app::Directory& apps, ApiSecurity security = {});
  ~ApiServer();
  /// Throws std::runtime_error naming the address when the port cannot be bound.
  void bind(const std::string& host, int port);
  /// Serves on a listening socket the daemon was given (socket activation, upgrade).
  void adopt(int fd, int port);
  /// The listening socket (to hand to a newer daemon).
  int listening_fd() const { return keep_; }
  /// What POST /upgrade runs (not set: 501).
  void on_upgrade(std::function<UpgradeAnswer()> upgrade) { upgrade_ = std::move(upgrade); }
  /// POST /shutdown (`slot-machine stop`): answered 200, then `stop` runs (it must only
  /// ask the daemon to stop, as SIGTERM does, not stop the server from its own thread).
  void on_shutdown(std::function<void()> stop) { shutdown_ = std::move(stop); }
  /// What POST /reload runs (not set: 501).
  void on_reload(std::function<ReloadAnswer()> reload) { reload_ = std::move(reload); }
  /// What GET /metrics answers (Prometheus text; not set: 501).
  void on_metrics(std::function<std::string()> scrape) { metrics_ = std::move(scrape); }
  /// Serves the dashboard (GET /ui/ and its endpoints) too, and lets its logins use the
  /// API; before serve().
  void serve_dashboard(ui::Dashboard& dashboard);
  /// Starts accepting on a thread of its own.
  void serve();
  /// Stops accepting new connections; the listening socket itself stays open and
  /// untouched (a newer daemon or systemd holds it too), so connections that arrive now
  /// wait in its queue. Connections already accepted are served (keep-alive ones until
  /// they idle for the keep-alive timeout, 2 s).
  void stop_accepting();
  /// Stops accepting, ends log followers, waits for requests in progress, and closes
  /// this process's descriptor of the socket.
  void stop();

 private:
  /// The route table of contract §5 (routes.cpp).
  void add_routes();

  /// The caller's `Prefer: wait=N` as a Wait (none when absent); false after answering
  /// 400 when it is malformed.
  bool wait_of(const httplib::Request& req, httplib::Response& res, app::OpWait& wait) const;

  /// The app an app-scoped request is for: the NAME of /apps/NAME/..., or the only app
  /// for an unprefixed route. nullptr after answering 404 (no such app), 400 (several
  /// apps, no name) or 503 (the app is listed with an error).
  std::shared_ptr<app::App> app_of(const httplib::Request& req, httplib::Response& res) const;

  const app::Directory& apps_;
  int port_ = 0;
  int fd_ = -1;    // the descriptor httplib accepts on
  int keep_ = -1;  // ours, of the same socket: outlives httplib's
  bool serving_ = false;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> accept_loop_ended_{false};
  std::function<UpgradeAnswer()> upgrade_;
  std::function<ReloadAnswer()> reload_;
  std::function<void()> shutdown_;
  std::function<std::string()> metrics_;
  Admission admission_;
  std::atomic<bool> stopping_{false};
  LogFollowers logs_;
};

}  // namespace sm::api
