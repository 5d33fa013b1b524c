#pragma once
// cpp-httplib's server as the API uses it: the listening socket in our hands, and a
// thread pool that says when the accept loop has ended (server.cpp, listening.cpp).

#include <httplib.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "http/reply.h"

namespace sm::api {

using http::reply;

namespace detail {

/// Reaches httplib::Server's protected listening descriptor.
struct ServerSocket : httplib::Server {
  static auto member() { return &ServerSocket::svr_sock_; }
};

/// httplib's thread pool, telling when the accept loop has ended (it shuts the pool
/// down right after; the workers are still finishing their requests).
class Pool : public httplib::ThreadPool {
 public:
  Pool(size_t n, std::atomic<bool>& ended) : ThreadPool(n), ended_(ended) {}
  void shutdown() override {
    ended_ = true;
    ThreadPool::shutdown();
  }

 private:
  std::atomic<bool>& ended_;
};

}  // namespace detail

/// The descriptor httplib accepts on, for a server of either kind (plain or SSLServer):
/// we bind or adopt the listening socket ourselves and never let httplib shut it down
/// (its stop() would shut it down for every process that holds it: systemd, a newer
/// daemon).
inline std::atomic<socket_t>& listening_socket_of(httplib::Server& server) {
  return server.*detail::ServerSocket::member();
}

}  // namespace sm::api
