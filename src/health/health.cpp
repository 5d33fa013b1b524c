#include "health/health.h"

#include <fmt/format.h>
#include <httplib.h>

#include <cmath>

#include "process/reaper.h"

namespace sm::health {

Probe probe_http(int port, const std::string& path, milliseconds timeout) {
  httplib::Client client("127.0.0.1", port);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  client.set_connection_timeout(us / 1000000, us % 1000000);
  client.set_read_timeout(us / 1000000, us % 1000000);
  client.set_write_timeout(us / 1000000, us % 1000000);
  client.set_keep_alive(false);
  auto res = client.Get(path);
  if (!res) {
    auto err = res.error();
    return {false, err == httplib::Error::Connection ? "connection refused"
                                                     : httplib::to_string(err)};
  }
  return {res->status >= 200 && res->status < 300, fmt::format("HTTP {}", res->status)};
}

milliseconds backoff(int attempt) {
  double ms = std::pow(1.25, std::clamp(attempt - 1, 0, 64));
  return milliseconds(std::lround(std::min(50.0, ms)));
}

Result wait_healthy(const Watch& watch, milliseconds timeout) {
  Result r;
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  auto finish = [&](Outcome o) {
    r.outcome = o;
    r.took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    return r;
  };
  for (;;) {
    if (auto st = watch.exited()) {
      r.exit_status = *st;
      return finish(Outcome::ProcessExited);
    }
    ++r.attempts;
    Probe p = watch.probe();
    r.last_detail = p.detail;
    if (p.healthy) return finish(Outcome::Healthy);
    auto now = Clock::now();
    if (now >= deadline) return finish(Outcome::TimedOut);
    if (!watch.pause_until(std::min(deadline, now + backoff(r.attempts))))
      return finish(Outcome::Cancelled);
  }
}

std::string describe(const Result& r) {
  switch (r.outcome) {
    case Outcome::Healthy:
      return fmt::format("healthy after {} probe(s) in {} ms", r.attempts, r.took.count());
    case Outcome::TimedOut:
      return fmt::format("not healthy after {} ms and {} probe(s) (last probe: {})",
                         r.took.count(), r.attempts, r.last_detail);
    case Outcome::ProcessExited:
      return fmt::format("the app {} before it became healthy",
                         process::describe_exit(r.exit_status));
    case Outcome::Cancelled:
      return "health check abandoned: the daemon is shutting down";
  }
  return "unknown health outcome";
}

}  // namespace sm::health
