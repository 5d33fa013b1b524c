#pragma once
// Helpers shared by the service specs (upgrade_spec.cpp, service_spec.cpp): load on the
// public port, and following an upgrade.

#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "harness.h"

namespace spec {

/// Requests to the public port from `threads` threads until stopped: with keep-alive
/// (the daemon's hand-over closes connections as their requests finish) or a new
/// connection each time. Counts answers, failures, and refused connections apart, and
/// the slowest answer. `host`: the Host header to send (one of several apps); "" for
/// httplib's own.
class Load {
 public:
  Load(int port, int threads, bool keep_alive, const std::string& host = "") {
    for (int i = 0; i < threads; ++i)
      workers_.emplace_back([this, port, keep_alive, host] {
        httplib::Client c("127.0.0.1", port);
        c.set_keep_alive(keep_alive);
        c.set_connection_timeout(5, 0);
        c.set_read_timeout(10, 0);
        httplib::Headers headers;
        if (!host.empty()) headers.emplace("Host", host);
        while (!stop_) {
          const auto began = std::chrono::steady_clock::now();
          auto r = c.Get("/", headers);
          const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began);
          for (long long m = slowest_ms_; took.count() > m && !slowest_ms_.compare_exchange_weak(m, took.count());) {
          }
          if (r && r->status == 200) {
            ++ok_;
          } else {
            ++failed_;
            if (!r && r.error() == httplib::Error::Connection) ++refused_;
            std::lock_guard lock(mu_);
            if (first_failure_.empty())
              first_failure_ = r ? "HTTP " + std::to_string(r->status) : httplib::to_string(r.error());
          }
        }
      });
  }
  ~Load() { finish(); }
  void finish() {
    stop_ = true;
    for (auto& t : workers_)
      if (t.joinable()) t.join();
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }
  int refused() const { return refused_; }
  long long slowest_ms() const { return slowest_ms_; }
  std::string first_failure() {
    std::lock_guard lock(mu_);
    return first_failure_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0}, refused_{0};
  std::atomic<long long> slowest_ms_{0};
  std::mutex mu_;
  std::string first_failure_;
  std::vector<std::thread> workers_;
};

/// POST /upgrade; on success the harness follows the new daemon. Returns the answer.
inline Http upgrade(Daemon& d) {
  Http h = http_post(d.api_port(), "/upgrade", "{}", 90s);
  if (h.status == 200) {
    const int old_exit = d.follow_upgrade(h.json_body()["pid"].get<pid_t>());
    CHECK_MESSAGE(old_exit == 0, "old daemon exit " << old_exit << "\n" << d.log());
  }
  return h;
}

}  // namespace spec
