#pragma once
// Running one piece of the daemon's own work in a child process that can be stopped at
// any moment: the stop is SIGKILL, so whatever the work is doing (libgit2 writing a large
// checkout, which offers no way to stop) ends at once.

#include <functional>
#include <string>
#include <vector>

#include "process/reaper.h"

namespace sm::process {

/// The descriptor a worker writes its error message to (nothing when it succeeded).
constexpr int kWorkerResultFd = 3;

/// How a worker ended.
struct WorkerResult {
  bool stopped = false;  // `stop` said so and the child was killed
  std::string error;     // "" when it exited 0; else what it wrote to kWorkerResultFd
};

/// Runs this very binary (/proc/self/exe, so also after a package upgrade replaced the
/// file) with `args` after argv[0] in a child process, while this thread asks `stop` every
/// 20 ms. Fork then exec at once: between them the child only makes system calls, so no
/// lock another thread of the daemon held at the fork (the allocator's under
/// AddressSanitizer, libgit2's global ones) can hang it. The child keeps 0-2, gets the
/// result pipe as kWorkerResultFd and no other descriptor (no listening socket outlives
/// the daemon in it), an empty signal mask, and dies with the calling thread
/// (PR_SET_PDEATHSIG), which waits for it here.
WorkerResult run_worker(Reaper& reaper, const std::vector<std::string>& args,
                        const std::function<bool()>& stop);

/// In a worker's main: sends `error` ("" for success) back and ends the process at once
/// (_exit: no static destructors, no leak check of libraries' one-off allocations).
[[noreturn]] void finish_worker(const std::string& error);

}  // namespace sm::process
