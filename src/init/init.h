#pragma once
// `slot-machine init`: detect the project in a directory and write slot-machine.json.

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sm::init {

/// What detection found: the commands to write and why they were chosen.
struct Detection {
  std::string ecosystem;       // "bun", "npm", ... for the message
  std::string setup_command;
  std::string start_command;
  std::map<std::string, std::string> workers;  // a Procfile's other entries (contract §16)
  std::vector<std::string> notes;              // what of the Procfile was not used, and why
};

/// A Procfile's entries, in order: `name: command` lines (blank lines and # comments
/// skipped).
std::vector<std::pair<std::string, std::string>> parse_procfile(const std::string& text);

/// Inspects `dir` (lock files, package.json, Procfile) and picks setup/start commands;
/// first match of contract §2's table wins, a Procfile `web:` line beats the start guess,
/// its `release:` runs after the setup guess (as part of setup_command) and its other
/// entries become workers.
/// A package.json `scripts.start` is written as its own text; with `use_runner`, as the
/// package manager's runner (`npm start`, `bun run start`). nullopt when nothing is
/// recognised.
std::optional<Detection> detect(const std::filesystem::path& dir, bool use_runner = false);

/// The slot-machine.json text for a detection; env_file is written when `.env` exists.
std::string render_config(const Detection& d, bool has_env_file);

/// Appends `.slot-machine` to `dir`/.gitignore unless a line already says it.
/// Returns true when it changed the file.
bool ensure_gitignored(const std::filesystem::path& dir);

/// A failure init reports to the user (exit != 0, nothing written).
class InitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What `run` did, as lines for the user.
struct Outcome {
  std::string message;
};

/// The whole command: detect, write slot-machine.json (unless it exists and !force),
/// update .gitignore. Throws InitError.
Outcome run(const std::filesystem::path& dir, bool force, bool use_runner = false);

}  // namespace sm::init
