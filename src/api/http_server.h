#pragma once
// cpp-httplib's server as the API uses it: the listening socket in our hands, and a
// thread pool that says when the accept loop has ended (server.cpp, listening.cpp).

#include <httplib.h>

#include <atomic>

namespace sm::api {

/// httplib's server with the listening socket in our hands: adopted from outside, and
/// never shut down (httplib's stop() would shut it down for every process that holds
/// it: systemd, a newer daemon).
class HttpServer : public httplib::Server {
 public:
  void adopt(int fd) { svr_sock_ = fd; }
  int fd() const { return svr_sock_; }
};

namespace detail {

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

}  // namespace sm::api
