#pragma once
// The daemon's HTTP API (cpp-httplib): parses requests, calls the Daemon, maps its
// results to status codes and JSON bodies.

#include <atomic>
#include <memory>
#include <string>

#include "daemon/daemon.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace sm::api {

/// Request bodies above this size are refused with 413.
inline constexpr size_t kMaxBodyBytes = 1 << 20;
/// `GET /logs?follow=1` streams at once; each holds one API thread.
inline constexpr int kMaxLogFollowers = 4;

/// ApiServer serves contract §5 for one Daemon. bind() then listen() (blocking) on one
/// thread; stop() from another.
class ApiServer {
 public:
  explicit ApiServer(daemon::Daemon& daemon);
  ~ApiServer();
  /// Throws std::runtime_error naming the address when the port cannot be bound.
  void bind(const std::string& host, int port);
  void listen();
  void stop();

 private:
  void logs(const httplib::Request& req, httplib::Response& res);

  /// The caller's `Prefer: wait=N` as a Wait (none when absent); false after answering
  /// 400 when it is malformed.
  bool wait_of(const httplib::Request& req, httplib::Response& res, daemon::OpWait& wait) const;

  daemon::Daemon& daemon_;
  int port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> followers_{0};
};

}  // namespace sm::api
