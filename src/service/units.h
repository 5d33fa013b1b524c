#pragma once
// `slot-machine systemd`: the .service and .socket units for one app (contract §7), or
// for a server of apps (one unit for the whole server, contract §13).

#include <filesystem>
#include <string>

#include "config/config.h"

namespace sm::service {

/// Where the app and the daemon live, all absolute.
struct UnitSpec {
  std::string name;                 // unit name without suffix: slot-machine-myapp
  std::filesystem::path binary;     // the slot-machine executable
  std::filesystem::path config;     // slot-machine.json
  std::filesystem::path repo;       // the app's repository
  std::filesystem::path data;       // the data directory
  std::string user;                 // User=, "" for none (root)
  bool proxy = true;                // proxy mode: the socket also holds the public port(s)
  bool server = false;              // a server config ("apps"): one unit for every app
};

/// NAME.service: Type=notify, the daemon started with the config, `upgrade` as reload,
/// KillMode=mixed (a stop is SIGTERM to the daemon, which drains the apps; an upgrade
/// kills nothing), restarted on failure.
std::string service_unit(const UnitSpec& spec, const config::Config& cfg);

/// NAME.socket: the API port and, in proxy mode, the public (and internal) port, held by
/// systemd across daemon restarts and upgrades.
std::string socket_unit(const UnitSpec& spec, const config::Config& cfg);

/// The default unit name for an app whose config is in `dir`: slot-machine-<dir name>,
/// with characters systemd does not allow in unit names replaced by '-'.
std::string default_unit_name(const std::filesystem::path& dir);

struct UnitOptions {
  std::filesystem::path config = "slot-machine.json";
  std::string name;                 // default: default_unit_name(config's directory)
  std::filesystem::path out = "/etc/systemd/system";
  std::filesystem::path repo;       // default: the config's directory
  std::filesystem::path data;       // default: <repo>/.slot-machine; a server config: /var/lib/NAME
  std::string user;                 // default: the config file's owner (none when root)
  bool no_proxy = false;
  bool force = false;
};

/// Writes both units; returns the process exit code (2: bad config or option, 1: a file
/// exists without --force or cannot be written), printing the paths written on `out`.
int write_units(const UnitOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace sm::service
