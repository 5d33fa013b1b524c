// Revisions as a client sends them: the syntax check, then libgit2's revparse against a
// small repository (three commits, tags, a branch). Only GitError may come out.
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_support.h"
#include "git/git.h"

namespace {
std::optional<sm::git::Library> library;
std::optional<sm::git::Repository> repo;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  library.emplace();
  fuzz::make_repo(fuzz::scratch() / "repo", 3);
  repo.emplace(sm::git::Repository::open(fuzz::scratch() / "repo"));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    repo->resolve(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const sm::git::GitError&) {
  }
  return 0;
}
