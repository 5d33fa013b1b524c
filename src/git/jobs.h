#pragma once
// The git work a deploy may need to stop at any moment (a checkout, a fetch), as a job
// for a worker process: the daemon runs its own binary with job_args(), whose main hands
// them to worker_main() (see process/worker.h for why a separate process, and why exec).

#include <optional>
#include <string>
#include <vector>

#include "git/git.h"

namespace sm::git {

/// argv[1] of a worker; not a command users type (worker_main refuses to run without the
/// result pipe the daemon gives it).
inline constexpr const char* kWorkerCommand = "__git-worker";

/// `repo.checkout_worktree(path, name, commit)`, with repo's extra object directories.
std::vector<std::string> checkout_args(const Repository& repo, const std::filesystem::path& path,
                                       const std::string& name, const std::string& commit);
/// `repo.fetch(remote, token_file)`.
std::vector<std::string> fetch_args(const Repository& repo, const std::string& remote,
                                    const std::filesystem::path& token_file);

/// A job as the worker reads it back from its arguments (those after kWorkerCommand).
struct Job {
  enum class Kind { Checkout, Fetch } kind = Kind::Checkout;
  std::filesystem::path repo;                      // what Repository::open takes
  std::vector<std::filesystem::path> extra_objects;
  std::filesystem::path path;                      // checkout: the worktree
  std::string name;                                // checkout: worktree name; fetch: remote
  std::string commit;                              // checkout
  std::filesystem::path token_file;                // fetch
};
/// nullopt when `args` is not what checkout_args/fetch_args make.
std::optional<Job> parse_job(const std::vector<std::string>& args);

/// main's branch for argv[1] == kWorkerCommand: runs the job and never returns.
[[noreturn]] void worker_main(int argc, char** argv);

}  // namespace sm::git
