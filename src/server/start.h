#pragma once
// `slot-machine start`: read the settings, build the Server, serve until a signal (or an
// upgrade's hand-over), then stop. The process's main for the daemon.

#include "server/settings.h"

namespace sm::server {

/// Runs the daemon in the foreground. Returns the process exit code: 0 after a clean
/// shutdown or a hand-over, 2 for a bad config or options, 1 when it cannot start.
int start_daemon(const StartOptions& opts);

}  // namespace sm::server
