#include "cli/hook_checks.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

extern char** environ;

namespace sm::cli {
namespace fs = std::filesystem;

namespace {

struct Git {
  int status = -1;  // exit status, -1 when git could not be run
  std::string out;
};

/// Runs `git args...` with GIT_DIR (and GIT_WORK_TREE when given) set, stdout captured,
/// stderr to /dev/null, stdin closed: no shell, so no argument is ever interpreted.
Git git(const std::vector<std::string>& args, const std::string& git_dir, const std::string& work_tree = "") {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string v = *e;
    if (v.rfind("GIT_DIR=", 0) != 0 && v.rfind("GIT_WORK_TREE=", 0) != 0) env.push_back(v);
  }
  env.push_back("GIT_DIR=" + git_dir);
  if (!work_tree.empty()) env.push_back("GIT_WORK_TREE=" + work_tree);
  std::vector<char*> envp, argv;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> all{"git"};
  all.insert(all.end(), args.begin(), args.end());
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);

  Git r;
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return r;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, "git", &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  if (rc == 0) {
    char buf[4096];
    for (ssize_t n; (n = read(out[0], buf, sizeof buf)) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      if (r.out.size() < (1 << 20)) r.out.append(buf, static_cast<size_t>(n));
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  close(out[0]);
  return r;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

/// Up to five paths from `git status --porcelain`-like output, for the message.
std::string some_paths(const std::string& listing) {
  std::vector<std::string> paths;
  size_t start = 0, count = 0;
  for (size_t nl; (nl = listing.find('\n', start)) != std::string::npos; start = nl + 1) {
    ++count;
    if (paths.size() < 5) paths.push_back(listing.substr(start, nl - start));
  }
  if (paths.empty()) return "";
  return fmt::format(" ({}{})", fmt::join(paths, ", "), count > paths.size() ? ", ..." : "");
}

bool is_zero(const std::string& id) { return id.find_first_not_of('0') == std::string::npos; }

}  // namespace

std::string refusal_by_git(const RefUpdate& u, const std::string& git_dir) {
  if (is_zero(u.new_id)) return "";  // a deletion: nothing is deployed
  if (!is_zero(u.old_id) && trimmed(git({"config", "--bool", "receive.denyNonFastForwards"}, git_dir).out) == "true" &&
      git({"merge-base", "--is-ancestor", u.old_id, u.new_id}, git_dir).status != 0)
    return fmt::format("{} is not a fast-forward of {} and receive.denyNonFastForwards is set", u.new_id.substr(0, 12),
                       u.old_id.substr(0, 12));

  if (trimmed(git({"rev-parse", "--is-bare-repository"}, git_dir).out) == "true") return "";
  if (trimmed(git({"symbolic-ref", "-q", "HEAD"}, git_dir).out) != u.ref) return "";  // not the checked-out branch
  std::string deny = trimmed(git({"config", "receive.denyCurrentBranch"}, git_dir).out);
  std::transform(deny.begin(), deny.end(), deny.begin(), ::tolower);
  if (deny == "warn" || deny == "ignore" || deny == "false" || deny == "no" || deny == "off" || deny == "0") return "";
  if (deny != "updateinstead")
    return fmt::format("{} is the branch checked out in this non-bare repository, and git refuses to move it "
                       "(receive.denyCurrentBranch is \"{}\"); on the server run `git config "
                       "receive.denyCurrentBranch updateInstead`, or push to a bare repository",
                       u.ref, deny.empty() ? "refuse" : deny);
  const fs::path hooks = fs::path(git_dir) / "hooks" / "push-to-checkout";
  if (access(hooks.c_str(), X_OK) == 0) return "";  // that hook decides, after ours

  // receive-pack's push_to_deploy(), step by step, in the work tree it would update.
  std::string work_tree = trimmed(git({"config", "core.worktree"}, git_dir).out);
  if (work_tree.empty()) {  // git's default: the directory holding the repository's .git
    fs::path dir = fs::absolute(git_dir).lexically_normal();
    if (!dir.has_filename()) dir = dir.parent_path();  // "/srv/app/.git/" -> "/srv/app/.git"
    work_tree = dir.parent_path().string();
  }
  git({"update-index", "-q", "--ignore-submodules", "--refresh"}, git_dir, work_tree);
  const std::string advice =
      "commit or discard them on the server first (a slot-machine.json that lives in the work tree must be "
      "committed, or kept outside it: see the README's \"Deploy on git push\")";
  if (git({"diff-files", "--quiet", "--ignore-submodules", "--"}, git_dir, work_tree).status != 0)
    return fmt::format("git would refuse it (receive.denyCurrentBranch updateInstead): the work tree {} has "
                       "unstaged changes{}; {}", work_tree,
                       some_paths(git({"diff-files", "--name-only", "--ignore-submodules", "--"}, git_dir, work_tree).out),
                       advice);
  const std::string head = git({"rev-parse", "-q", "--verify", "HEAD"}, git_dir).status == 0
                               ? "HEAD"
                               : trimmed(git({"hash-object", "-t", "tree", "/dev/null"}, git_dir).out);
  if (git({"diff-index", "--quiet", "--cached", "--ignore-submodules", head, "--"}, git_dir, work_tree).status != 0)
    return fmt::format("git would refuse it (receive.denyCurrentBranch updateInstead): the index of {} has "
                       "staged changes{}; {}", work_tree,
                       some_paths(git({"diff-index", "--cached", "--name-only", "--ignore-submodules", head, "--"},
                                      git_dir, work_tree).out),
                       advice);
  // An untracked file the new commit would overwrite: read-tree's dry run says so.
  if (git({"read-tree", "-n", "-u", "-m", head, u.new_id}, git_dir, work_tree).status != 0)
    return fmt::format("git would refuse it (receive.denyCurrentBranch updateInstead): updating the work tree "
                       "{} to {} would overwrite files there that git does not track; move them away on the server",
                       work_tree, u.new_id.substr(0, 12));
  return "";
}

}  // namespace sm::cli
