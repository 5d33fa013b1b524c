#pragma once
// Running one piece of the daemon's own work in a child process that can be stopped at
// any moment: the stop is SIGKILL, so whatever the work is doing (libgit2 writing a large
// checkout, which offers no way to stop) ends at once.

#include <functional>
#include <string>

#include "process/reaper.h"

namespace sm::process {

/// How forked work ended.
struct ForkedResult {
  bool stopped = false;  // `stop` said so and the child was killed
  std::string error;     // "" when the work returned; else its exception's message
};

/// Runs `work` in a forked child (no exec; its own copy of the daemon's memory) while this
/// thread asks `stop` every 20 ms. The child holds no descriptor of the daemon's (closed
/// at once, so no listening socket outlives the daemon in it) and dies with the daemon
/// (PR_SET_PDEATHSIG). `work` runs single-threaded in the child: it must not use locks
/// other threads may hold (the reaper's, the log's); libgit2 on the operation thread is
/// fine, as only that thread uses it. An exception's message comes back as `error`.
ForkedResult run_forked(Reaper& reaper, const std::function<void()>& work,
                        const std::function<bool()>& stop);

}  // namespace sm::process
