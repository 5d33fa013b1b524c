#include "app/proxy_router.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>

namespace sm::app {

bool port_is_free(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  // As servers bind (the proxy's listener too): TIME_WAIT leftovers do not make it busy.
  int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

int pick_free_port(int lo, int hi, const std::set<int>& exclude) {
  static std::mutex mu;
  static std::mt19937 rng(std::random_device{}());
  static std::map<int, std::chrono::steady_clock::time_point> picked;  // port → when
  std::lock_guard lock(mu);
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(picked, [&](const auto& p) { return now - p.second > std::chrono::minutes(1); });
  const int span = hi - lo + 1;
  const int start = std::uniform_int_distribution<int>(0, span - 1)(rng);
  for (int i = 0; i < span; ++i) {
    int p = lo + (start + i) % span;
    if (!exclude.count(p) && !picked.count(p) && port_is_free(p)) {
      picked[p] = now;
      return p;
    }
  }
  throw std::runtime_error(fmt::format("no free port for the app in {}-{}", lo, hi));
}

Ports ProxyRouter::ports_for_new_process() {
  Ports p;
  p.port = pick_free_port(lo_, hi_, reserved_);
  if (one_port_) {
    p.internal_port = p.port;
    return p;
  }
  auto exclude = reserved_;
  exclude.insert(p.port);
  p.internal_port = pick_free_port(lo_, hi_, exclude);
  return p;
}

}  // namespace sm::app
