#pragma once
// All git work, through libgit2: resolving revisions, detached worktrees, checkout.
// No `git` subprocess, and nothing here creates a branch or any other ref.

#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

struct git_repository;

namespace sm::git {

/// Why a git operation failed, so callers can map it (400 vs 404 vs 500).
enum class ErrorKind { InvalidRevision, UnknownRevision, NotARepository, Other };

/// A git failure with libgit2's message and the value involved.
class GitError : public std::runtime_error {
 public:
  GitError(ErrorKind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

/// Keeps libgit2 initialised for its lifetime (one per program, in main).
class Library {
 public:
  Library();
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
};

/// Rejects revision strings that must never reach git: empty, leading '-', control
/// characters, over 256 bytes. Throws GitError(InvalidRevision).
void check_revision_syntax(const std::string& rev);

/// A commit as the dashboard shows it.
struct CommitInfo {
  std::string hash;     // full
  std::string subject;  // the message's first line
  std::string author;   // the author's name
  long long time = 0;   // commit time, seconds since the epoch
};

/// A repository. libgit2 handles are opened per operation and freed after it: a handle
/// kept open holds its caches (objects, pack delta bases, mapped pack windows: ~10 MB
/// for a packed repository of a few thousand files) for as long as it lives.
/// Not thread-safe: one caller at a time (the daemon's op lock).
class Repository {
 public:
  /// Opens the repository whose work tree or .git is exactly `dir`.
  static Repository open(const std::filesystem::path& dir);
  /// Opens the repository containing `dir`, searching upwards (like `git` in a subdir).
  static Repository discover(const std::filesystem::path& dir);

  /// Resolves a full/short hash, branch, tag or HEAD to the full hash of a commit.
  std::string resolve(const std::string& rev) const;

  /// Makes `path` a worktree of this repository named `name` (created on first use,
  /// registered under .git/worktrees/<name> like `git worktree add --detach`) and checks
  /// `commit` out there, detached. Incremental: only changed files are written; untracked
  /// and ignored files are kept; tracked local edits are overwritten. A checkout that did
  /// not finish (killed, crashed, failed) leaves a mark in the worktree's admin directory;
  /// the next checkout there empties the work tree first and writes every file, so no
  /// file of the unfinished one is left behind as if untracked.
  void checkout_worktree(const std::filesystem::path& path, const std::string& name,
                         const std::string& commit) const;

  /// What `rev` (as resolve() takes it) names; throws GitError like resolve().
  CommitInfo describe(const std::string& rev) const;
  /// The short names of the references under `prefix` ("refs/heads/", "refs/tags/"), sorted.
  std::vector<std::string> refs(const std::string& prefix) const;
  /// Up to `n` commits reachable from HEAD, newest first (none when HEAD has no commit).
  std::vector<CommitInfo> recent(size_t n) const;

  std::filesystem::path workdir() const { return workdir_; }
  /// The object database directory (<git dir>/objects).
  std::filesystem::path objects_dir() const;
  /// Where git looks for this repository's hooks.
  std::filesystem::path hooks_dir() const;
  /// The branch HEAD names ("main"), also when it has no commit yet; "" when detached.
  std::string head_branch() const;
  bool bare() const { return workdir_ == gitdir_; }

  /// Object directories to read besides the repository's own, for the operations that
  /// follow (a push's quarantine while its pre-receive hook runs); empty: none.
  void set_extra_objects(std::vector<std::filesystem::path> dirs) { extra_objects_ = std::move(dirs); }
  const std::vector<std::filesystem::path>& extra_objects() const { return extra_objects_; }

  /// Fetches `remote` (a configured remote's name): its branches into
  /// refs/remotes/<remote>/. Credentials for SSH come from the ssh-agent; for HTTPS, a
  /// token from `token_file` when given. Throws GitError saying why it failed.
  void fetch(const std::string& remote, const std::filesystem::path& token_file = {}) const;

 private:
  struct Handle;
  /// The Repository that the handle `r` opened; frees `r`.
  static Repository at(git_repository* r);
  /// A fresh libgit2 handle on this repository, freed by the caller's Handle.
  Handle handle() const;
  Repository(std::filesystem::path gitdir, std::filesystem::path workdir)
      : gitdir_(std::move(gitdir)), workdir_(std::move(workdir)) {}
  /// Adds extra_objects_ to `r`'s object database.
  void add_extra_objects(git_repository* r) const;
  std::vector<std::filesystem::path> extra_objects_;
  std::filesystem::path gitdir_;   // the .git directory (what handle() opens)
  std::filesystem::path workdir_;  // the work tree, or gitdir_ for a bare repository
};

}  // namespace sm::git
