#pragma once
// Socket activation: listening sockets handed to the daemon by systemd (LISTEN_FDS,
// LISTEN_FDNAMES) or by the daemon it replaces in an upgrade, sorted into the roles the
// daemon listens for.

#include <stdexcept>
#include <string>
#include <vector>

namespace sm::service {

/// A listening TCP socket the daemon was given: its descriptor, its name in
/// LISTEN_FDNAMES and the port it is bound to.
struct PassedSocket {
  int fd = -1;
  std::string name;
  int port = 0;
};

/// The configured ports, to tell the passed sockets apart.
struct Roles {
  int port = 0;           // public (proxy mode)
  int api_port = 0;
  int internal_port = 0;  // proxy mode, when it differs from port
  bool proxy = true;      // direct mode: the app binds port and internal_port itself
  int tls_port = 0;       // proxy mode with "tls": HTTPS; 0: none
};

/// The passed sockets by role; -1 for a role the daemon binds itself.
struct Listeners {
  int public_fd = -1, api_fd = -1, internal_fd = -1, https_fd = -1;
};

/// A socket set the daemon cannot use; the message names what was expected.
struct ActivationError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Sorts `passed` into roles. A socket named public, api, internal or https must be bound to
/// that role's port; one with systemd's default name (a socket unit's name, or
/// "unknown" when LISTEN_FDNAMES is absent) takes the role its port has. Throws
/// ActivationError for any other name, a port that is no role's, two sockets for one
/// role, or public/internal in direct mode.
Listeners assign(const std::vector<PassedSocket>& passed, const Roles& roles);

/// The sockets passed to this process (sd_listen_fds_with_names), with LISTEN_FDS,
/// LISTEN_PID and LISTEN_FDNAMES removed from the environment so the apps do not see
/// them. Empty when none were passed (or they were meant for another process). Throws
/// ActivationError when one is not a listening TCP socket.
std::vector<PassedSocket> passed_sockets();

}  // namespace sm::service
