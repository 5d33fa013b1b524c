#pragma once
// `slot-machine start`: wire config, git, processes, router, daemon and API together
// and run until SIGTERM/SIGINT.

#include <filesystem>
#include <optional>

namespace sm::api {

struct StartOptions {
  std::filesystem::path config = "slot-machine.json";
  std::filesystem::path repo = ".";
  std::filesystem::path data = ".slot-machine";
  std::optional<int> api_port;  // --port beats the config's api_port
  bool no_proxy = false;
};

/// Runs the daemon in the foreground. Returns the process exit code: 0 after a clean
/// shutdown, 2 for a bad config, 1 when it cannot start.
int start_daemon(const StartOptions& opts);

}  // namespace sm::api
