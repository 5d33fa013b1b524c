#pragma once
// The harness's process helpers, shared by harness.cpp and harness_daemon.cpp.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace spec::detail {

/// Spawns argv in cwd with `extra` added to the environment, stdout/stderr appended to
/// files, `pass_fds` as descriptors 3, 4, ...; returns the pid.
pid_t spawn_with(const std::vector<std::string>& argv, const std::filesystem::path& cwd,
                 const std::map<std::string, std::string>& extra, const std::filesystem::path& out,
                 const std::filesystem::path& err, const std::vector<int>& pass_fds = {});

/// waitpid with a timeout; returns the exit code (128+sig when signalled) or -1.
int wait_exit(pid_t pid, std::chrono::milliseconds timeout);

/// A tag no other daemon of this run has.
std::string unique_tag();

}  // namespace spec::detail
