#include "server/upgrader.h"

#include <fmt/format.h>

#include "log/log.h"
#include "service/sd_notify.h"
#include "service/upgrade.h"

namespace sm::server {
using Clock = std::chrono::steady_clock;

api::UpgradeAnswer Upgrader::run() {
  std::unique_lock one(mu_, std::try_to_lock);
  if (!one || handed_over_) return {409, "an upgrade is already running", 0, ""};
  // Every app's operation lock, so that no deploy, rollback or restart starts while the
  // new daemon takes over.
  const auto apps = apps_.list();
  std::vector<std::unique_lock<std::mutex>> ops;
  for (const auto& l : *apps) {
    if (!l.app) continue;
    ops.push_back(l.app->hold_operations());
    if (!ops.back())
      return {409, fmt::format("a deploy, rollback or restart{} is running (or waiting); upgrade when it has finished",
                               apps->size() > 1 ? " of app " + l.name : ""), 0, ""};
  }
  for (const auto& l : *apps)
    if (l.app) l.app->end_canary_for_upgrade();
  const std::string exe = service::own_executable();
  log::info("upgrade: starting {} on this daemon's sockets", exe);
  service::notify_reloading();
  std::vector<service::HandedSocket> sockets;
  if (proxy_)
    for (auto& [name, fd] : proxy_->listening_sockets()) sockets.push_back({name, fd});
  sockets.push_back({"api", server_.listening_fd()});
  const auto began = Clock::now();
  try {
    auto next = service::Successor::start(exe, args_, sockets, lock_fd_, reaper_, kReadyTimeout);
    server_.stop_accepting();
    next.go();
    // New connections are the new daemon's from now on (one accepted here would
    // be closed with this daemon, a WebSocket at the drain deadline).
    if (proxy_) proxy_->stop_accepting();
    for (const auto& l : *apps)
      if (l.app) l.app->hand_over();  // no operation starts here again
    handed_over_ = true;
    successor_pid_ = next.pid();
    service::notify_new_main(next.pid(), status_line_());
    log::info("upgrade: the new daemon (pid {}, {}) serves after {} ms", next.pid(), next.version(),
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began).count());
    return {200, "", next.pid(), next.version()};
  } catch (const service::UpgradeError& e) {
    log::info("upgrade failed: {}", e.what());
    service::notify_ready(status_line_());  // the old daemon serves on
    return {500, e.what(), 0, ""};
  }
}

}  // namespace sm::server
