#pragma once
// Drain: SIGTERM a whole group, wait, SIGKILL; done only when every process is gone.

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "process/process_group.h"
#include "process/reaper.h"

namespace sm::process {

/// How a drain ended.
struct DrainResult {
  bool killed = false;  // SIGTERM was not enough; SIGKILL was sent
  bool gone = false;    // no process of the group is left
  std::chrono::milliseconds took{0};
  bool exited_before = false;         // the leader had already exited when the drain began
  std::optional<int> leader_status;   // its wait status, when it was our child and has exited
};

/// "exited after SIGTERM", "had already exited with status 3", "SIGKILLed after
/// drain_timeout_ms=5000", ...: how a drain ended, for logs.
std::string describe(const DrainResult& d, std::chrono::milliseconds grace);

/// Waits until no member of `group` is alive or `deadline` passes. Wakes on every exit
/// the reaper sees and re-checks at least every 10 ms (grandchildren are reaped by
/// their own parents, not by us). Returns true when the group is gone.
bool wait_gone(Reaper& reaper, const ProcessGroup& group, Clock::time_point deadline);

/// SIGTERM every member, wait up to `grace`, then SIGKILL every member and wait until
/// they are gone. The leader's recorded status is forgotten afterwards.
DrainResult drain(Reaper& reaper, const ProcessGroup& group, std::chrono::milliseconds grace);

/// At daemon shutdown: SIGKILL every remaining descendant of this process and wait
/// (bounded) until none is left. Returns how many were found.
size_t kill_all_descendants(Reaper& reaper);

}  // namespace sm::process
