#pragma once
// libgit2 handles as RAII types, and the small helpers the git/ files share (internal to
// src/git/: nothing outside includes it).

#include <fmt/format.h>
#include <git2.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "files/atomic_file.h"
#include "git/git.h"

namespace sm::git::detail {

/// libgit2's message for the last error on this thread.
inline std::string last_error() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown libgit2 error";
}

/// Frees a libgit2 object when it goes out of scope.
template <typename T, void (*FreeFn)(T*)>
struct Owned {
  T* p = nullptr;
  ~Owned() {
    if (p) FreeFn(p);
  }
};
using Object = Owned<git_object, git_object_free>;
using Commit = Owned<git_commit, git_commit_free>;
using Tree = Owned<git_tree, git_tree_free>;
using Index = Owned<git_index, git_index_free>;
using Repo = Owned<git_repository, git_repository_free>;

/// files::write_atomic, failing as a GitError.
inline void write_file(const std::filesystem::path& p, const std::string& text) {
  try {
    files::write_atomic(p, text);
  } catch (const std::runtime_error& e) {
    throw GitError(ErrorKind::Other, e.what());
  }
}

/// The first line of a file ("" when it cannot be read).
inline std::string read_line(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::string line;
  std::getline(f, line);
  return line;
}

}  // namespace sm::git::detail

namespace sm::git {
/// An open repository (Repository::handle()), freed when it goes out of scope.
struct Repository::Handle : detail::Repo {};
}  // namespace sm::git
