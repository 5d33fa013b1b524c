#pragma once
// The old daemon's half of `upgrade` (contract §7), split from start.cpp.

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "api/server.h"
#include "app/directory.h"
#include "process/reaper.h"
#include "proxy/proxy.h"

namespace sm::server {

/// The old daemon's half of `upgrade` (contract §7): start the binary at our executable
/// path on our listening sockets, and once it serves, hand it every app of `apps`.
class Upgrader {
 public:
  Upgrader(const app::Directory& apps, api::ApiServer& server, proxy::Proxy* proxy, process::Reaper& reaper,
           std::vector<std::string> args, int lock_fd, std::function<std::string()> status_line)
      : apps_(apps), server_(server), proxy_(proxy), reaper_(reaper), args_(std::move(args)), lock_fd_(lock_fd),
        status_line_(std::move(status_line)) {}

  /// Starts the new daemon on this one's sockets and hands it the apps; 409 while an
  /// operation runs or another upgrade does, 500 (this daemon serves on) when it fails.
  api::UpgradeAnswer run();

  bool handed_over() const { return handed_over_; }
  pid_t successor() const { return successor_pid_; }

 private:
  static constexpr std::chrono::seconds kReadyTimeout{60};
  const app::Directory& apps_;
  api::ApiServer& server_;
  proxy::Proxy* proxy_;
  process::Reaper& reaper_;
  const std::vector<std::string> args_;
  const int lock_fd_;  // the data directory's lock, passed on to the new daemon
  const std::function<std::string()> status_line_;  // for systemd's STATUS=
  std::mutex mu_;
  std::atomic<bool> handed_over_{false};
  std::atomic<pid_t> successor_pid_{0};
};

}  // namespace sm::server
