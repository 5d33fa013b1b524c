#pragma once
// The health probe loop: probe as soon as the process starts, back off gently,
// give up at the deadline or as soon as the process exits.

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace sm::health {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// One probe's answer.
struct Probe {
  bool healthy = false;
  std::string detail;  // "HTTP 503", "connection refused", ...
};

/// GET http://127.0.0.1:<port><path>; 2xx is healthy. Bounded by `timeout`.
Probe probe_http(int port, const std::string& path, milliseconds timeout);

/// How a wait for health ended; named so callers and tests can tell them apart.
enum class Outcome { Healthy, TimedOut, ProcessExited, Cancelled };

struct Result {
  Outcome outcome = Outcome::TimedOut;
  int attempts = 0;
  std::string last_detail;  // the last probe's detail
  int exit_status = 0;      // wait status, when outcome == ProcessExited
  milliseconds took{0};
};

/// What the loop needs from the world, so it can be tested without processes.
struct Watch {
  std::function<Probe()> probe;
  /// The process's wait status once it exited.
  std::function<std::optional<int>()> exited;
  /// Sleeps up to the given time, returning early when the process may have exited;
  /// returns false when the wait must be abandoned (daemon shutting down).
  std::function<bool(Clock::time_point)> pause_until;
};

/// Delay before probe number `attempt` (1-based after the first, immediate one):
/// 1 ms growing by a quarter each time, capped at 50 ms.
milliseconds backoff(int attempt);

/// Probes until healthy, the process exits, `timeout` passes, or pause_until says stop.
Result wait_healthy(const Watch& watch, milliseconds timeout);

/// "healthy after 3 probes in 12 ms", "not healthy after 10000 ms (last probe: HTTP 503)".
std::string describe(const Result& r);

}  // namespace sm::health
