// Repository::checkout_worktree: a slot as a detached git worktree (split from git.cpp).
#include "git/git.h"
#include "git/handles.h"

#include <fmt/format.h>
#include <git2.h>

namespace sm::git {
namespace fs = std::filesystem;
using namespace detail;

namespace {
/// Whether HEAD of `repo` names an object its object store has.
bool head_resolves(git_repository* repo) {
  git_oid head;
  if (git_reference_name_to_id(&head, repo, "HEAD") != 0) return false;
  git_odb* odb = nullptr;
  if (git_repository_odb(&odb, repo) != 0) return false;
  const bool found = git_odb_exists(odb, &head) == 1;
  git_odb_free(odb);
  return found;
}
}  // namespace

void Repository::checkout_worktree(const fs::path& path, const std::string& name,
                                   const std::string& commit) const {
  git_oid oid;
  if (git_oid_fromstr(&oid, commit.c_str()) != 0)
    throw GitError(ErrorKind::InvalidRevision, fmt::format("\"{}\" is not a full hash", commit));

  // Register the worktree the way `git worktree add --detach` does, without any ref.
  const fs::path admin = [&] {
    const Handle repo = handle();
    return fs::path(git_repository_commondir(repo.p)) / "worktrees" / name;
  }();
  const fs::path abs = fs::absolute(path).lexically_normal();
  const fs::path dotgit = abs / ".git";
  const fs::path unfinished = admin / "slot-machine-checkout";
  if (fs::exists(unfinished)) {
    // The last checkout here was cut short: which of the files are its own is unknown.
    std::error_code ec;
    fs::remove_all(abs, ec);
    if (ec)
      throw GitError(ErrorKind::Other, fmt::format("cannot empty {} after an unfinished checkout: {}",
                                                   abs.string(), ec.message()));
    fs::remove(admin / "index.lock", ec);
    fs::remove(admin / "HEAD.lock", ec);
  }
  const bool fresh = !fs::exists(dotgit) || !fs::exists(admin / "gitdir") ||
                     read_line(admin / "gitdir") != dotgit.string() ||
                     read_line(dotgit) != "gitdir: " + admin.string();
  if (fresh) {
    fs::create_directories(admin);
    fs::create_directories(abs);
    write_file(admin / "gitdir", dotgit.string() + "\n");
    write_file(admin / "commondir", "../..\n");
    write_file(admin / "HEAD", commit + "\n");
    fs::remove(admin / "index");
    write_file(dotgit, "gitdir: " + admin.string() + "\n");
  }

  write_file(unfinished, commit + "\n");

  Repo wt;
  if (git_repository_open_ext(&wt.p, abs.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0)
    throw GitError(ErrorKind::Other,
                   fmt::format("cannot open worktree {}: {}", abs.string(), last_error()));
  add_extra_objects(wt.p);
  Commit c;
  if (git_commit_lookup(&c.p, wt.p, &oid) != 0)
    throw GitError(ErrorKind::UnknownRevision,
                   fmt::format("commit {} not found: {}", commit, last_error()));

  git_checkout_options opts;
  git_checkout_options_init(&opts, GIT_CHECKOUT_OPTIONS_VERSION);
  opts.checkout_strategy = GIT_CHECKOUT_FORCE;  // untracked and ignored files are kept
  Index empty, last;
  if (!fresh && !head_resolves(wt.p)) {
    // HEAD names an object that is gone (before 0.1.x, a push git rejected after its
    // deploy left one): compare against what the last checkout wrote, its index.
    if (git_repository_index(&last.p, wt.p) != 0)
      throw GitError(ErrorKind::Other, fmt::format("checkout: {}", last_error()));
    opts.baseline_index = last.p;
  }
  if (fresh) {
    // Nothing is checked out yet: compare against an empty baseline so every file is written.
    if (git_index_new(&empty.p) != 0)
      throw GitError(ErrorKind::Other, fmt::format("checkout: {}", last_error()));
    opts.baseline_index = empty.p;
  }
  const int rc = git_checkout_tree(wt.p, reinterpret_cast<git_object*>(c.p), &opts);
  if (rc != 0)
    throw GitError(ErrorKind::Other, fmt::format("checkout of {} into {} failed: {}", commit,
                                                 abs.string(), last_error()));
  if (git_repository_set_head_detached(wt.p, &oid) != 0)
    throw GitError(ErrorKind::Other,
                   fmt::format("cannot detach HEAD of {} at {}: {}", abs.string(), commit,
                               last_error()));
  // A slot keeps no reflog: its entries would outlive the objects of a rejected push and
  // `git fsck` would report them. The journal is the slot's history.
  std::error_code ec;
  fs::remove(admin / "logs" / "HEAD", ec);
  fs::remove(unfinished);
}

}  // namespace sm::git
