// standby: times rollbacks and crash recovery as a client sees them, against a running
// daemon in proxy mode with two versions deployed. Driven by bench/standby.sh.
//
// usage: standby API_PORT PUBLIC_PORT rollbacks N     N rollbacks back and forth
//        standby API_PORT PUBLIC_PORT crash           SIGKILL the live app once
//
// For each rollback: the API round trip, and the time from sending POST /rollback until
// a client polling GET / on the public port (keep-alive, back to back) first gets the
// other version. For a crash: the time from the SIGKILL until that client gets a 200
// again. Before the rollbacks it prints the standby's memory (/proc/PID/smaps_rollup).

#include <fmt/format.h>
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

nlohmann::json status(int api) {
  httplib::Client c("127.0.0.1", api);
  auto r = c.Get("/status");
  if (!r || r->status != 200) {
    fmt::print(stderr, "GET /status failed\n");
    std::exit(1);
  }
  return nlohmann::json::parse(r->body);
}

/// GET / on the public port back to back; remembers when each new answer began.
class Poller {
 public:
  explicit Poller(int port) : thread_([this, port] { run(port); }) {}
  ~Poller() {
    stop_ = true;
    thread_.join();
  }
  /// Waits until an answer that is not `old` (a 200 whose body differs, when `old` is a
  /// body) arrived after `since`; returns when it arrived.
  Clock::time_point first_after(Clock::time_point since, const std::string& old) {
    for (;;) {
      {
        std::lock_guard lock(mu_);
        for (const auto& [at, body] : seen_)
          if (at >= since && body != old && !body.empty()) return at;
        seen_.clear();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  /// When the first failed answer (not a 200) sent after `since` was sent, if one comes
  /// within `within`.
  std::optional<Clock::time_point> first_failure_after(Clock::time_point since, std::chrono::milliseconds within) {
    const auto deadline = Clock::now() + within;
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(mu_);
        for (const auto& [at, body] : seen_)
          if (at >= since && body.empty()) return at;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return std::nullopt;
  }
  std::string current() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  void run(int port) {
    httplib::Client c("127.0.0.1", port);
    c.set_keep_alive(true);
    c.set_connection_timeout(1, 0);
    c.set_read_timeout(5, 0);
    while (!stop_) {
      const auto sent = Clock::now();
      auto r = c.Get("/");
      std::string body = r && r->status == 200 ? r->body : "";
      std::lock_guard lock(mu_);
      // The request may have been sent before the switch, so count its send time.
      seen_.emplace_back(sent, body);
      if (!body.empty()) last_ = body;
    }
  }
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::pair<Clock::time_point, std::string>> seen_;
  std::string last_;
  std::thread thread_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void memory_of(const char* what, int pid) {
  std::ifstream in(fmt::format("/proc/{}/smaps_rollup", pid));
  std::string line, rss, pss;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string key, value;
    s >> key >> value;
    if (key == "Rss:") rss = value;
    if (key == "Pss:") pss = value;
  }
  fmt::print("{} (pid {}): Rss {} kB, Pss {} kB\n", what, pid, rss, pss);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    fmt::print(stderr, "usage: standby API_PORT PUBLIC_PORT rollbacks N | crash\n");
    return 2;
  }
  const int api = std::atoi(argv[1]), port = std::atoi(argv[2]);
  const std::string what = argv[3];
  Poller poller(port);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  if (what == "crash") {
    const int pid = status(api)["live_pid"];
    const auto killed = Clock::now();
    ::kill(pid, SIGKILL);
    // The first failed request after the kill, then the first 200 after it.
    const auto failed = poller.first_failure_after(killed, std::chrono::milliseconds(5000));
    if (!failed) {
      fmt::print("crash to serving: no request failed in the 5 s after the kill\n");
      return 0;
    }
    const auto back = poller.first_after(*failed, "");
    fmt::print("crash to serving: {:.1f} ms from the kill to the first 200 after the first failure ({:.1f} ms after "
               "the kill); now serving: {}",
               ms_between(killed, back), ms_between(killed, *failed), poller.current());
    return 0;
  }

  const int n = argc > 4 ? std::atoi(argv[4]) : 10;
  const auto s = status(api);
  if (s.value("previous_pid", 0)) memory_of(fmt::format("{} standby", s.value("standby", "")).c_str(), s["previous_pid"]);
  memory_of("live app", s["live_pid"]);
  std::vector<double> api_ms, served_ms;
  for (int i = 0; i < n; ++i) {
    const std::string before = poller.current();
    httplib::Client c("127.0.0.1", api);
    c.set_read_timeout(60, 0);
    const auto t0 = Clock::now();
    auto r = c.Post("/rollback", "{}", "application/json");
    const auto t1 = Clock::now();
    if (!r || r->status != 200) {
      fmt::print(stderr, "rollback failed: {}\n", r ? r->body : httplib::to_string(r.error()));
      return 1;
    }
    const auto served = poller.first_after(t0, before);
    api_ms.push_back(ms_between(t0, t1));
    served_ms.push_back(ms_between(t0, served));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  fmt::print("rollbacks: n={} API median {:.1f} ms (min {:.1f}, max {:.1f}); first request served by the other "
             "version median {:.1f} ms (min {:.1f}, max {:.1f})\n",
             n, median(api_ms), *std::min_element(api_ms.begin(), api_ms.end()),
             *std::max_element(api_ms.begin(), api_ms.end()), median(served_ms),
             *std::min_element(served_ms.begin(), served_ms.end()),
             *std::max_element(served_ms.begin(), served_ms.end()));
  return 0;
}
