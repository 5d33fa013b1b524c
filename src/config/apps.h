#pragma once
// A server config (contract §13): the server's fields, and its "apps" (each app's
// repository, the hosts it is reached by, where its own slot-machine.json is); and an
// app's own file within a server. Pure parsing and validation; the server builds its
// apps and host table from the result.

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "hosts/hosts.h"

namespace sm::config {

/// The most apps one server config may hold.
inline constexpr size_t kMaxApps = 1000;

/// One app of a server config.
struct AppEntry {
  std::string name;                   // [a-z0-9][a-z0-9-]{0,31}
  std::filesystem::path repo;         // absolute
  std::vector<hosts::Pattern> hosts;  // at least one
  std::filesystem::path config;       // absolute; default <repo>/slot-machine.json
  bool strip_prefix = true;           // a matched path prefix is removed before the app sees the path
  std::string canonical_host;         // "" or one of `hosts` (exact, no prefix): the others answer 308 to it
  std::string user, group;            // the system user (and group) its setup and app run as; "": the daemon's
};

/// Whether `name` is a valid app name.
bool valid_app_name(const std::string& name);

/// Parses "apps" (an object: name → entry). Relative paths are resolved against
/// `base_dir`. Throws ConfigError naming the app and field: not an object, no apps or
/// more than kMaxApps, a bad name, a missing or empty "repo" or "hosts", a bad host, a
/// host (with its prefix) in two apps, a canonical_host not among the app's exact
/// hosts, an unknown key.
std::vector<AppEntry> parse_apps(const nlohmann::json& apps, const std::filesystem::path& base_dir);

/// A config with "apps": the server's fields (in a Config whose app fields stay at their
/// defaults) and the apps.
struct ServerConfig {
  Config server;
  std::vector<AppEntry> apps;
  std::vector<std::string> warnings;
};

/// Whether `text` is a server config (a JSON object with "apps"); false for anything else,
/// invalid JSON included (parse() then says what is wrong).
bool is_server_config(const std::string& text);

/// Parses a server config: "apps" and the server's fields only; an app's field at the top
/// level is refused saying where it belongs. Throws ConfigError.
ServerConfig parse_server(const std::string& text, const std::filesystem::path& base_dir);

/// Parses an app's own file within a server: the app's fields (start_command required);
/// the server's fields are ignored, named in one warning. Throws ConfigError.
Loaded parse_app_file(const std::string& text, const std::filesystem::path& base_dir);

/// Reads and parses the server config at `path`. Throws ConfigError.
ServerConfig load_server(const std::filesystem::path& path);

/// Reads and parses `app`'s own file, and gives it the server's fields (ports, TLS,
/// API, proxy limits) from `server`: what that app's App runs with. Every app gets one
/// port (health on PORT: internal_port is the server's own). Throws ConfigError
/// naming the app and the file.
Loaded load_app_file(const AppEntry& app, const Config& server);

}  // namespace sm::config
