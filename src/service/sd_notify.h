#pragma once
// systemd's notify protocol (sd_notify): readiness, a one-line status, reloading and
// stopping. Every call does nothing when the daemon was not started with NOTIFY_SOCKET.

#include <string>
#include <sys/types.h>

namespace sm::service {

/// READY=1 with STATUS=<status>: the daemon serves (state restored, listeners bound),
/// at start and again after an upgrade that failed (RELOADING=1 is over).
void notify_ready(const std::string& status);
/// STATUS=<line>, sent only when it differs from the last one sent.
void notify_status(const std::string& line);
/// RELOADING=1: an upgrade has begun.
void notify_reloading();
/// MAINPID=<pid>, READY=1: the upgrade is done and `pid` is the daemon now.
void notify_new_main(pid_t pid, const std::string& status);
/// STOPPING=1: the daemon begins to shut down.
void notify_stopping();

}  // namespace sm::service
