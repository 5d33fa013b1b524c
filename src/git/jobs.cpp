#include "git/jobs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

#include "process/worker.h"

namespace sm::git {
namespace {

/// The extra object directories go last, so the fixed fields keep their places.
std::vector<std::string> with_extras(std::vector<std::string> args, const Repository& repo) {
  for (const auto& d : repo.extra_objects()) args.push_back(d.string());
  return args;
}

}  // namespace

std::vector<std::string> checkout_args(const Repository& repo, const std::filesystem::path& path,
                                       const std::string& name, const std::string& commit) {
  return with_extras({kWorkerCommand, "checkout", repo.workdir().string(), path.string(), name, commit}, repo);
}

std::vector<std::string> fetch_args(const Repository& repo, const std::string& remote,
                                    const std::filesystem::path& token_file) {
  return with_extras({kWorkerCommand, "fetch", repo.workdir().string(), remote, token_file.string()}, repo);
}

std::optional<Job> parse_job(const std::vector<std::string>& args) {
  if (args.size() < 2) return std::nullopt;
  Job job;
  size_t fixed;
  if (args[0] == "checkout" && args.size() >= 5) {
    job.kind = Job::Kind::Checkout;
    job.path = args[2];
    job.name = args[3];
    job.commit = args[4];
    fixed = 5;
  } else if (args[0] == "fetch" && args.size() >= 4) {
    job.kind = Job::Kind::Fetch;
    job.name = args[2];
    job.token_file = args[3];
    fixed = 4;
  } else {
    return std::nullopt;
  }
  job.repo = args[1];
  if (job.repo.empty()) return std::nullopt;
  for (size_t i = fixed; i < args.size(); ++i) job.extra_objects.emplace_back(args[i]);
  return job;
}

void worker_main(int argc, char** argv) {
  struct stat st{};
  if (fstat(process::kWorkerResultFd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
    std::fprintf(stderr, "slot-machine: %s is run by the daemon only\n", kWorkerCommand);
    _exit(2);
  }
  const auto job = parse_job(std::vector<std::string>(argv + 2, argv + argc));
  if (!job) process::finish_worker(std::string("the daemon gave its ") + kWorkerCommand + " bad arguments");
  std::string error;
  try {
    const Library lib;
    Repository repo = Repository::open(job->repo);
    repo.set_extra_objects(job->extra_objects);
    if (job->kind == Job::Kind::Checkout) repo.checkout_worktree(job->path, job->name, job->commit);
    else repo.fetch(job->name, job->token_file);
  } catch (const std::exception& e) {
    error = *e.what() ? e.what() : "failed";
  }
  process::finish_worker(error);
}

}  // namespace sm::git
