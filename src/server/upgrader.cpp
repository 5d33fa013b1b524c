#include "server/upgrader.h"

#include "log/log.h"
#include "service/sd_notify.h"
#include "service/upgrade.h"

namespace sm::server {
using Clock = std::chrono::steady_clock;

api::UpgradeAnswer Upgrader::run() {
  std::unique_lock one(mu_, std::try_to_lock);
  if (!one || handed_over_) return {409, "an upgrade is already running", 0, ""};
  auto ops = app_.hold_operations();
  if (!ops)
    return {409, "a deploy, rollback or restart is running (or waiting); upgrade when it has finished", 0, ""};
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
    app_.hand_over();  // no operation starts here again
    handed_over_ = true;
    successor_pid_ = next.pid();
    service::notify_new_main(next.pid(), app_.status_line());
    log::info("upgrade: the new daemon (pid {}, {}) serves after {} ms", next.pid(), next.version(),
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began).count());
    return {200, "", next.pid(), next.version()};
  } catch (const service::UpgradeError& e) {
    log::info("upgrade failed: {}", e.what());
    service::notify_ready(app_.status_line());  // the old daemon serves on
    return {500, e.what(), 0, ""};
  }
}

}  // namespace sm::server
