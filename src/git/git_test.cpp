#include "git/git.h"

#include <doctest/doctest.h>

using sm::git::check_revision_syntax;
using sm::git::ErrorKind;
using sm::git::GitError;

namespace {
std::string refusal(const std::string& rev) {
  try {
    check_revision_syntax(rev);
  } catch (const GitError& e) {
    CHECK(e.kind() == ErrorKind::InvalidRevision);
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("git: revision strings that must never reach git are refused") {
  CHECK(refusal("") == "commit must not be empty");
  CHECK(refusal("-rf") == "commit \"-rf\" must not start with '-'");
  CHECK(refusal("--upload-pack=x").find("must not start with '-'") != std::string::npos);
  CHECK(refusal("a\nb") == "commit contains control characters");
  CHECK(refusal(std::string("a\0b", 3)) == "commit contains control characters");
  CHECK(refusal(std::string(257, 'a')) == "commit is 257 bytes long; at most 256 allowed");
  CHECK(refusal(":/fix").find("searching commit messages") != std::string::npos);
  CHECK(refusal("main^{/fix}").find("searching commit messages") != std::string::npos);
}

TEST_CASE("git: ordinary revisions pass the syntax check") {
  for (const char* rev : {"HEAD", "main", "v1.2.0", "feature/x", "abc1234", "HEAD~2", "a-b"})
    CHECK_MESSAGE(refusal(rev).empty(), rev);
}
