#include "process/drain.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <csignal>

namespace sm::process {

using std::chrono::milliseconds;

bool wait_gone(Reaper& reaper, const ProcessGroup& group, Clock::time_point deadline) {
  for (;;) {
    uint64_t gen = reaper.generation();
    if (members(group).empty()) return true;
    auto now = Clock::now();
    if (now >= deadline) return false;
    reaper.wait_change(gen, std::min(deadline, now + milliseconds(10)));
  }
}

DrainResult drain(Reaper& reaper, const ProcessGroup& group, milliseconds grace) {
  DrainResult r;
  const auto start = Clock::now();
  r.exited_before = reaper.exit_status(group.leader).has_value();
  signal_group(group, SIGTERM);
  signal_group(group, SIGCONT);  // a stopped process must run to see SIGTERM
  r.gone = wait_gone(reaper, group, start + grace);
  if (!r.gone) {
    r.killed = true;
    signal_group(group, SIGKILL);
    // SIGKILL cannot be ignored; only a process stuck in the kernel outlives this bound.
    r.gone = wait_gone(reaper, group, Clock::now() + std::chrono::seconds(10));
  }
  r.leader_status = reaper.exit_status(group.leader);
  reaper.forget(group.leader);
  r.took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  return r;
}

std::string describe(const DrainResult& d, milliseconds grace) {
  std::string how;
  if (d.exited_before)
    how = d.leader_status ? "had already " + describe_exit(*d.leader_status) : "had already exited";
  else if (d.killed)
    how = fmt::format("SIGKILLed after drain_timeout_ms={}", grace.count());
  else if (d.leader_status && !(WIFSIGNALED(*d.leader_status) && WTERMSIG(*d.leader_status) == SIGTERM) &&
           !(WIFEXITED(*d.leader_status) && WEXITSTATUS(*d.leader_status) == 0))
    how = describe_exit(*d.leader_status) + " after SIGTERM";
  else
    how = "exited after SIGTERM";
  if (!d.gone) how += "; some processes could not be killed";
  return how;
}

size_t kill_all_descendants(Reaper& reaper) {
  size_t found = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    uint64_t gen = reaper.generation();
    auto left = all_descendants();
    if (left.empty() || Clock::now() >= deadline) return found;
    found = std::max(found, left.size());
    for (pid_t pid : left) kill(pid, SIGKILL);
    reaper.wait_change(gen, std::min(deadline, Clock::now() + milliseconds(10)));
  }
}

}  // namespace sm::process
