#pragma once
// "Every process of a slot": its process group plus any descendant that left the group.

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace sm::process {

/// One command slot-machine started: `leader` is the /bin/sh it spawned, whose pid is
/// also the process group id. `token` is a unique value placed in the environment
/// (SLOT_MACHINE_RUN) so descendants that setsid() out of the group are still found.
struct ProcessGroup {
  pid_t leader = -1;
  std::string token;
  /// Started by an earlier daemon and adopted: not our descendant, so the reaper never
  /// sees it exit and its members are found by token alone.
  bool adopted = false;
};

/// The environment variable that carries a group's token.
inline constexpr const char* kRunTokenVar = "SLOT_MACHINE_RUN";

/// Living (non-zombie) processes that belong to `group`: descendants of this process in
/// its process group or carrying its token in their environment; for an adopted group,
/// any process carrying its token.
std::vector<pid_t> members(const ProcessGroup& group);

/// True while `pid` exists and is not a zombie.
bool is_alive(pid_t pid);

/// Every living process whose SLOT_MACHINE_RUN token starts with `prefix`, by token.
std::map<std::string, std::vector<pid_t>> processes_by_token_prefix(const std::string& prefix);

/// Living (non-zombie) descendants of this process, whatever group they are in.
std::vector<pid_t> all_descendants();

/// Sends `sig` to the process group and to every member found outside it.
void signal_group(const ProcessGroup& group, int sig);

}  // namespace sm::process
