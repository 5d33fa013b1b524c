// deploy_latency: times POST /deploy and POST /rollback against a running daemon and
// reads the daemon's memory afterwards. Driven by bench/deploy_latency.sh.
//
// usage: deploy_latency API_PORT DAEMON_PID COMMIT_A COMMIT_B [N]

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double post_ms(int port, const std::string& path, const std::string& body) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  auto start = Clock::now();
  auto res = c.Post(path, body, "application/json");
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (!res || res->status != 200) {
    fmt::print(stderr, "{} failed: {}\n", path, res ? res->body : httplib::to_string(res.error()));
    std::exit(1);
  }
  return ms;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string status_field(int pid, const std::string& key) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  return "?";
}

long kb(const std::string& field) { return std::atol(field.c_str()); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    fmt::print(stderr, "usage: deploy_latency API_PORT DAEMON_PID COMMIT_A COMMIT_B [N]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int pid = std::atoi(argv[2]);
  const std::string commits[2] = {argv[3], argv[4]};
  const int n = argc > 5 ? std::atoi(argv[5]) : 20;

  // Warm-up: the first deploy creates both worktrees from scratch; the figures are for
  // the steady state of a server that has deployed before.
  post_ms(port, "/deploy", nlohmann::json{{"commit", commits[0]}}.dump());
  post_ms(port, "/deploy", nlohmann::json{{"commit", commits[1]}}.dump());

  std::vector<double> deploys, rollbacks;
  for (int i = 0; i < n; ++i)
    deploys.push_back(post_ms(port, "/deploy", nlohmann::json{{"commit", commits[i % 2]}}.dump()));
  for (int i = 0; i < n; ++i) rollbacks.push_back(post_ms(port, "/rollback", "{}"));

  const double rss_mb = kb(status_field(pid, "VmRSS")) / 1024.0;
  fmt::print("deploys:   n={} median={:.1f} ms min={:.1f} max={:.1f}\n", n, median(deploys),
             *std::min_element(deploys.begin(), deploys.end()),
             *std::max_element(deploys.begin(), deploys.end()));
  fmt::print("rollbacks: n={} median={:.1f} ms min={:.1f} max={:.1f}\n", n, median(rollbacks),
             *std::min_element(rollbacks.begin(), rollbacks.end()),
             *std::max_element(rollbacks.begin(), rollbacks.end()));
  fmt::print("daemon:    VmRSS={:.1f} MB (RssAnon {} / RssFile {}), threads {}\n", rss_mb,
             status_field(pid, "RssAnon").substr(status_field(pid, "RssAnon").find_first_not_of(" \t")),
             status_field(pid, "RssFile").substr(status_field(pid, "RssFile").find_first_not_of(" \t")),
             status_field(pid, "Threads").substr(status_field(pid, "Threads").find_first_not_of(" \t")));
  fmt::print("\n{:<22}{:>14}{:>14}{:>12}\n", "", "slot-machine", "target", "Go ref.");
  fmt::print("{:<22}{:>11.1f} ms{:>11} ms{:>9} ms\n", "deploy median", median(deploys), "<= 40", "~218");
  fmt::print("{:<22}{:>11.1f} ms{:>11} ms{:>9} ms\n", "rollback median", median(rollbacks), "<= 30", "~207");
  fmt::print("{:<22}{:>11.1f} MB{:>11} MB{:>9} MB\n", "daemon RSS", rss_mb, "<= 4", "~8");
  return 0;
}
