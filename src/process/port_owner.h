#pragma once
// Who holds a TCP port, so that "port in use" can name the process (and not advise
// --no-proxy when it is another slot-machine).

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sm::process {

/// A process listening on a port.
struct PortOwner {
  pid_t pid = 0;
  std::string name;  // its /proc/PID/comm ("nginx", "slot-machine")
  std::string data;  // for a slot-machine: its --data argument, "" when not given
};

/// The process with a socket listening on TCP `port` (IPv4 or IPv6, any address), read
/// from /proc/net/tcp{,6} and /proc/*/fd; nullopt when none can be seen (another user's
/// process needs root to be seen).
std::optional<PortOwner> port_owner(int port);

/// A `slot-machine start` process: its working directory and arguments (after "start").
struct DaemonProcess {
  pid_t pid = 0;
  std::filesystem::path cwd;
  std::vector<std::string> args;
};
/// This user's `slot-machine start` processes (argv[1] is "start"), other than this one:
/// a client that finds no API may be looking at a daemon still starting.
std::vector<DaemonProcess> daemon_processes();

/// "another slot-machine (pid 12, --data /srv/x)" / "nginx (pid 7)".
std::string describe(const PortOwner& o);

}  // namespace sm::process
