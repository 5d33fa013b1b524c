#include "cli/hook.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/hook_checks.h"
#include "files/atomic_file.h"
#include "git/git.h"

namespace sm::cli {
namespace fs = std::filesystem;

namespace {

/// `s` in single quotes for sh.
std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool ours(const fs::path& hook) { return read_all(hook).find(kHookMarker) != std::string::npos; }

/// Branch names that are safe in a ref and in the hook's sh line.
bool good_branch(const std::string& b) {
  if (b.empty() || b.size() > 200 || b.front() == '-' || b.front() == '/' || b.back() == '/' ||
      b.find("..") != std::string::npos || b.ends_with(".lock"))
    return false;
  for (unsigned char c : b)
    if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/')) return false;
  return true;
}

/// The path to run slot-machine by, as installed: the PATH entry that is this binary
/// (a symlink to a versioned install stays a symlink, so swapping it is followed), else
/// the binary's own path.
fs::path invoked_path() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const fs::path dir = dirs.substr(start, end - start);
    start = end + 1;
    if (dir.empty() || !dir.is_absolute()) continue;
    const fs::path candidate = dir / "slot-machine";
    std::error_code cec;
    if (fs::equivalent(candidate, self, cec)) return candidate;
  }
  return self;
}

/// With a server config (contract §13): the app whose "repo" is `repo` (its work tree or
/// its git directory). "" for one app's config. Throws std::runtime_error when no app
/// of the server config has that repository.
std::string app_of_repo(const fs::path& config, const git::Repository& repo) {
  std::ifstream in(config, std::ios::binary);
  const auto doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("apps") || !doc["apps"].is_object()) return "";
  std::error_code ec;
  const fs::path mine[] = {fs::weakly_canonical(repo.workdir(), ec), fs::weakly_canonical(repo.hooks_dir().parent_path(), ec)};
  std::vector<std::string> names;
  for (const auto& [name, a] : doc["apps"].items()) {
    names.push_back(name);
    if (!a.is_object() || !a.contains("repo") || !a["repo"].is_string()) continue;
    fs::path r(a["repo"].get<std::string>());
    if (r.is_relative()) r = config.parent_path() / r;
    const fs::path theirs = fs::weakly_canonical(r, ec);
    if (theirs == mine[0] || theirs == mine[1]) return name;
  }
  throw std::runtime_error(fmt::format("no app of {} has this repository as its \"repo\" (apps: {}); pass --app NAME",
                                       config.string(), fmt::join(names, ", ")));
}

}  // namespace

int hook_install(const HookOptions& o, std::ostream& out, std::ostream& err) {
  try {
    const git::Library git_library;
    const git::Repository repo = git::Repository::open(fs::absolute(o.repo));
    const std::string branch = o.branch.empty() ? repo.head_branch() : o.branch;
    if (!good_branch(branch)) {
      err << fmt::format("slot-machine: hook install: {}; pass --branch NAME\n",
                         branch.empty() ? "HEAD names no branch" : fmt::format("\"{}\" is not a branch name", branch));
      return 2;
    }
    std::error_code ec;
    const fs::path config = fs::absolute(o.config).lexically_normal();
    if (!fs::is_regular_file(config, ec)) {
      err << fmt::format("slot-machine: hook install: no config at {}: the hook reads the daemon's API port and token "
                         "from it; pass --config PATH\n", config.string());
      return 2;
    }
    const std::string app = o.app.empty() ? app_of_repo(config, repo) : o.app;
    const fs::path self = invoked_path();
    const fs::path hooks = repo.hooks_dir();
    const fs::path hook = hooks / "pre-receive";
    if (fs::exists(hook) && !ours(hook) && !o.force) {
      err << fmt::format("slot-machine: hook install: {} exists and is not slot-machine's; move it away or pass "
                         "--force to replace it\n", hook.string());
      return 1;
    }
    fs::create_directories(hooks);
    const std::string text = fmt::format(
        "#!/bin/sh\n{}: pushes of {} deploy through the daemon of {}.\n"
        "# `slot-machine hook uninstall` removes it.\n"
        "exec {} hook run --branch {} --config {}{}\n",
        kHookMarker, branch, config.string(), sh_quote(self.string()), sh_quote(branch), sh_quote(config.string()),
        app.empty() ? "" : " --app " + sh_quote(app));
    files::write_atomic(hook, text, 0755);
    out << fmt::format("installed {}: a push of {} to {} deploys it (a failed deploy rejects the push)\n",
                       hook.string(), branch, repo.workdir().string());
    if (!repo.bare()) {
      out << "this repository has a work tree: pushes to its checked-out branch need "
             "`git config receive.denyCurrentBranch updateInstead`, and git refuses them while the work "
             "tree has uncommitted changes (the hook rejects such a push before deploying)\n";
      const fs::path work = fs::absolute(repo.workdir()).lexically_normal();
      const auto rel = config.lexically_relative(work);
      if (!rel.empty() && *rel.begin() != "..")
        out << fmt::format("{} is inside that work tree: commit it and change it by pushing, or keep it "
                           "outside the repository (hook install --config PATH); an uncommitted edit there "
                           "makes git refuse every push\n", config.string());
    }
    return 0;
  } catch (const std::exception& e) {
    err << "slot-machine: hook install: " << e.what() << "\n";
    return 1;
  }
}

int hook_uninstall(const HookOptions& o, std::ostream& out, std::ostream& err) {
  try {
    const git::Library git_library;
    const git::Repository repo = git::Repository::open(fs::absolute(o.repo));
    const fs::path hook = repo.hooks_dir() / "pre-receive";
    if (!fs::exists(hook)) {
      out << "no pre-receive hook in " << hook.parent_path().string() << ": nothing to remove\n";
      return 0;
    }
    if (!ours(hook)) {
      err << fmt::format("slot-machine: hook uninstall: {} is not slot-machine's; left alone\n", hook.string());
      return 1;
    }
    fs::remove(hook);
    out << "removed " << hook.string() << "\n";
    return 0;
  } catch (const std::exception& e) {
    err << "slot-machine: hook uninstall: " << e.what() << "\n";
    return 1;
  }
}

int hook_run(const ClientOptions& client, const std::string& branch, std::istream& in, std::ostream& out,
             std::ostream& err) {
  const std::string ref = "refs/heads/" + branch;
  const char* q = std::getenv("GIT_QUARANTINE_PATH");
  // Absolute: the daemon does not share our working directory.
  const std::string quarantine = q && *q ? fs::absolute(q).lexically_normal().string() : "";
  const char* gd = std::getenv("GIT_DIR");
  const std::string git_dir = fs::absolute(gd && *gd ? gd : ".").lexically_normal().string();
  std::string old_id, new_id, name;
  int code = 0;
  while (in >> old_id >> new_id >> name) {
    if (name != ref) continue;  // other branches and tags pass untouched
    if (new_id.find_first_not_of('0') == std::string::npos) {
      out << fmt::format("slot-machine: {} is being deleted; nothing is deployed\n", branch);
      continue;
    }
    // Everything git checks after this hook, checked before the deploy: a push git then
    // refuses must not have changed what runs.
    if (const std::string why = refusal_by_git({old_id, new_id, name}, git_dir); !why.empty()) {
      err << fmt::format("slot-machine: the push of {} is rejected before deploying: {}; nothing was deployed and "
                         "{} is unchanged\n", branch, why, branch);
      return 1;
    }
    out << fmt::format("slot-machine: deploying {} ({})\n", new_id.substr(0, 12), branch);
    out.flush();
    // Not --wait: a second push waits for nothing and is rejected (git would refuse its
    // ref update anyway once the first push moved the branch).
    code = deploy_command(client, new_id, out, err, quarantine);
    if (code != 0) {
      err << fmt::format("slot-machine: the push of {} is rejected: the deploy did not succeed (see above); {} "
                         "is unchanged\n", branch, branch);
      return code;
    }
  }
  return code;
}

}  // namespace sm::cli
