#pragma once
// Starting a command in its own process group with its output appended to a log.

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>

#include "process/process_group.h"
#include "process/reaper.h"

namespace sm::process {

/// The daemon's own environment as a map, the base every child's environment starts from.
std::map<std::string, std::string> current_environment();

/// What to run: `command` goes to `/bin/sh -c` in `cwd`; stdin is /dev/null; stdout and
/// stderr are appended to `log`. `env` is the whole environment (the token is added).
struct SpawnSpec {
  std::string command;
  std::filesystem::path cwd;
  std::filesystem::path log;
  std::map<std::string, std::string> env;
  /// Starts the group's token, so a later daemon can find every process it started
  /// (see processes_by_token_prefix).
  std::string token_prefix;
  /// Runs it as this user and group (and the user's supplementary groups), through
  /// util-linux's setpriv; -1: as the daemon's.
  int uid = -1, gid = -1;
};

/// A command that could not be started at all (bad cwd, no /bin/sh, log not writable).
class SpawnError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Starts `spec` with posix_spawn in a new process group, default signal dispositions,
/// an empty signal mask and no inherited descriptors beyond 0-2. The reaper watches it.
ProcessGroup spawn(Reaper& reaper, const SpawnSpec& spec);

}  // namespace sm::process
