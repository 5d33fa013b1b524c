#pragma once
// env files: KEY=VALUE lines added to the app's environment.

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace sm::config {

using EnvVars = std::vector<std::pair<std::string, std::string>>;

/// Parses env-file text: `KEY=VALUE` lines; blank lines and `#` comments skipped;
/// an optional `export ` prefix; values in single quotes are literal, values in double
/// quotes understand \n \t \" \\ \$; unquoted values end at ` #` and are trimmed.
/// Throws ConfigError naming `source` and the line number for a malformed line.
EnvVars parse_env(const std::string& text, const std::string& source);

/// Reads and parses the env file at `path`. Throws ConfigError when unreadable.
EnvVars load_env_file(const std::filesystem::path& path);

}  // namespace sm::config
