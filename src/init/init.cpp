#include "init/init.h"
#include "config/config.h"
#include "files/atomic_file.h"
#include "log/json_text.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace sm::init {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

std::optional<std::string> read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The start command for a JS runtime (contract §2): package.json's `scripts.start` text
/// itself (or, with `use_runner`, the runner that runs it), else `<runtime> <main>`, else
/// `<runtime> index.js`.
std::string js_start(const fs::path& dir, const std::string& runtime, const std::string& runner,
                     bool use_runner) {
  if (auto text = read(dir / "package.json")) {
    try {
      auto pkg = nlohmann::json::parse(*text);
      if (pkg.is_object()) {
        if (pkg.contains("scripts") && pkg["scripts"].is_object() &&
            pkg["scripts"].contains("start") && pkg["scripts"]["start"].is_string() &&
            !pkg["scripts"]["start"].get<std::string>().empty())
          return use_runner ? runner : pkg["scripts"]["start"].get<std::string>();
        if (pkg.contains("main") && pkg["main"].is_string() &&
            !pkg["main"].get<std::string>().empty())
          return runtime + " " + pkg["main"].get<std::string>();
      }
    } catch (const nlohmann::json::exception&) {
      // An unreadable package.json leaves the plain default.
    }
  }
  return runtime + " index.js";
}

std::optional<Detection> detect_lockfile(const fs::path& dir, bool use_runner) {
  if (present(dir / "bun.lock") || present(dir / "bun.lockb"))
    return Detection{"bun", "bun install --frozen-lockfile", js_start(dir, "bun", "bun run start", use_runner), {}, {}};
  if (present(dir / "package-lock.json"))
    return Detection{"npm", "npm ci", js_start(dir, "node", "npm start", use_runner), {}, {}};
  if (present(dir / "yarn.lock"))
    return Detection{"yarn", "yarn install --frozen-lockfile", js_start(dir, "node", "yarn start", use_runner), {}, {}};
  if (present(dir / "pnpm-lock.yaml"))
    return Detection{"pnpm", "pnpm install --frozen-lockfile", js_start(dir, "node", "pnpm start", use_runner), {}, {}};
  if (present(dir / "uv.lock")) return Detection{"uv", "uv sync --frozen", "uv run app.py", {}, {}};
  if (present(dir / "requirements.txt"))
    return Detection{"pip", "pip install -r requirements.txt", "python app.py", {}, {}};
  if (present(dir / "Gemfile.lock"))
    return Detection{"bundler", "bundle install", "bundle exec ruby app.rb", {}, {}};
  if (present(dir / "go.mod")) return Detection{"go", "go build -o app .", "./app", {}, {}};
  return std::nullopt;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_procfile(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line;
  auto trim = [](const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
  };
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0) continue;
    const std::string name = trim(line.substr(0, colon)), command = trim(line.substr(colon + 1));
    if (!name.empty() && !command.empty() && name.find_first_of(" \t") == std::string::npos)
      out.emplace_back(name, command);
  }
  return out;
}

std::optional<Detection> detect(const fs::path& dir, bool use_runner) {
  auto found = detect_lockfile(dir, use_runner);
  const auto procfile = read(dir / "Procfile");
  const auto entries = procfile ? parse_procfile(*procfile) : decltype(parse_procfile("")){};
  const bool web = std::any_of(entries.begin(), entries.end(), [](const auto& e) { return e.first == "web"; });
  if (!found && !web) return std::nullopt;
  if (!found) found = Detection{"Procfile", "", "", {}, {}};
  for (const auto& [name, command] : entries) {
    if (name == "web") {
      found->start_command = command;
    } else if (name == "release") {  // Heroku's release phase: after the build, before the start
      found->setup_command = found->setup_command.empty() ? command : found->setup_command + " && " + command;
    } else {
      std::string worker = name;
      for (char& c : worker) c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!config::valid_process_name(worker))
        found->notes.push_back(fmt::format("Procfile entry \"{}\" not made a worker: a worker's name is 1-32 of "
                                           "a-z, 0-9 and '-'; add it to \"workers\" by hand",
                                           name));
      else if (found->workers.count(worker))
        found->notes.push_back(fmt::format("Procfile entry \"{}\" not used: \"{}\" is a worker already", name, worker));
      else
        found->workers[worker] = command;
    }
  }
  return found;
}

std::string render_config(const Detection& d, bool has_env_file) {
  ordered_json j;
  if (!d.setup_command.empty()) j["setup_command"] = d.setup_command;
  j["start_command"] = d.start_command;
  if (!d.workers.empty()) j["workers"] = d.workers;
  j["port"] = 3000;
  j["internal_port"] = 3000;
  j["health_endpoint"] = "/healthz";
  j["health_timeout_ms"] = 10000;
  j["drain_timeout_ms"] = 5000;
  j["restart"] = "on-failure";  // contract §10: what a new user wants; the default stays "never"
  j["api_port"] = 9100;
  if (has_env_file) j["env_file"] = ".env";
  return log::json_text(j, 2) + "\n";
}

bool ensure_gitignored(const fs::path& dir) {
  const fs::path path = dir / ".gitignore";
  std::string text = read(path).value_or("");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == ".slot-machine" || line == ".slot-machine/" || line == "/.slot-machine" ||
        line == "/.slot-machine/")
      return false;
  }
  std::ofstream out(path, std::ios::binary | std::ios::app);
  if (!out) throw InitError(fmt::format("init: cannot write {}", path.string()));
  if (!text.empty() && text.back() != '\n') out << '\n';
  out << ".slot-machine\n";
  if (!out) throw InitError(fmt::format("init: cannot write {}", path.string()));
  return true;
}

namespace {

/// Where the annotated example config is: the package's copy, else the source's.
std::string example_config() {
  const fs::path installed = "/usr/share/doc/slot-machine/slot-machine.json.example";
  std::error_code ec;
  return fs::exists(installed, ec) ? installed.string()
                                   : "slot-machine.json.example (in slot-machine's source; the Debian package "
                                     "installs it as " + installed.string() + ")";
}

/// A bare git repository: HEAD, objects/ and refs/ at the top, no work tree.
bool is_bare_repository(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "HEAD", ec) && fs::is_directory(dir / "objects", ec) &&
         fs::is_directory(dir / "refs", ec) && !fs::exists(dir / ".git", ec);
}

}  // namespace

Outcome run(const fs::path& dir, bool force, bool use_runner) {
  const fs::path config = dir / "slot-machine.json";
  Outcome out;
  if (present(config) && !force) {
    bool changed = ensure_gitignored(dir);
    out.message = fmt::format(
        "{} already exists; left it untouched (use --force to overwrite){}", config.string(),
        changed ? "\nadded .slot-machine to .gitignore" : "");
    return out;
  }
  if (is_bare_repository(dir))
    throw InitError(fmt::format(
        "init: {} is a bare git repository: it has no files to detect the project from, and a config "
        "written into it would not be in any checkout. Run init in a clone of the app, or write "
        "slot-machine.json outside the repository from {} and start with `slot-machine start --repo {} "
        "--config PATH`",
        dir.string(), example_config(), dir.string()));
  auto d = detect(dir, use_runner);
  if (!d)
    throw InitError(fmt::format(
        "init: could not detect the project in {} (looked for bun.lock, package-lock.json, "
        "yarn.lock, pnpm-lock.yaml, uv.lock, requirements.txt, Gemfile.lock, go.mod and a "
        "Procfile web: line); write slot-machine.json by hand from {}",
        dir.string(), example_config()));
  const std::string text = render_config(*d, present(dir / ".env"));
  try {
    files::write_atomic(config, text);
  } catch (const std::runtime_error& e) {
    throw InitError(fmt::format("init: {}", e.what()));
  }
  bool changed = ensure_gitignored(dir);
  std::string workers;
  for (const auto& [name, command] : d->workers) workers += fmt::format(", worker {} \"{}\"", name, command);
  out.message = fmt::format("wrote {} ({} project: setup \"{}\", start \"{}\"{}){}{}", config.string(),
                            d->ecosystem, d->setup_command, d->start_command, workers,
                            changed ? "\nadded .slot-machine to .gitignore" : "",
                            d->notes.empty() ? "" : "\n" + fmt::format("{}", fmt::join(d->notes, "\n")));
  return out;
}

}  // namespace sm::init
