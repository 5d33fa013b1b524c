#pragma once
// The daemon's HTTP API (cpp-httplib): parses requests, calls the Daemon, maps its
// results to status codes and JSON bodies.

#include <memory>
#include <string>

#include "daemon/daemon.h"

namespace httplib {
class Server;
}

namespace sm::api {

/// Request bodies above this size are refused with 413.
inline constexpr size_t kMaxBodyBytes = 1 << 20;

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
  daemon::Daemon& daemon_;
  std::unique_ptr<httplib::Server> server_;
};

}  // namespace sm::api
