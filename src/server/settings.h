#pragma once
// What `slot-machine start` reads and checks before it touches anything: the options,
// the config (and its env_file), the API's token and TLS, and the combinations proxy-less
// mode cannot serve. A refusal is a StartError with the exit code it means.

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include "api/server.h"
#include "config/apps.h"
#include "config/config.h"

namespace sm::server {

struct StartOptions {
  std::filesystem::path config = "slot-machine.json";
  std::filesystem::path repo = ".";
  std::filesystem::path data = ".slot-machine";
  std::optional<int> api_port;  // --port beats the config's api_port
  bool no_proxy = false;
};

/// Why the daemon cannot start, and its exit code: 2 for a bad config or options, 1 for
/// everything else (a port taken, a repository that does not open...).
struct StartError : std::runtime_error {
  StartError(int code, const std::string& message) : std::runtime_error(message), code(code) {}
  int code;
};

/// The checked inputs of one daemon.
struct Settings {
  config::Config cfg;  // a single app's config, or the server's fields of a server config
  std::optional<config::ServerConfig> server;  // a config with "apps" (contract §13)
  api::ApiSecurity security;
  std::string webhook_secret;  // read from webhooks.secret_file ("" without webhooks)
};

/// Reads and checks everything the options name. Throws StartError (code 2).
Settings read_settings(const StartOptions& opts);

}  // namespace sm::server
