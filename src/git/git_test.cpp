#include "git/git.h"
#include "git/jobs.h"

#include <doctest/doctest.h>

#include <cstdlib>

#include "test_support.h"

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

TEST_CASE("git: resolve finds refs, hashes and describe strings without libgit2's describe parsing") {
  sm::test::TempDir d;
  const std::string g = "git -C '" + d.path.string() + "' ";
  const std::string commit = g + "-c user.email=t@example.com -c user.name=t commit -q --allow-empty -m ";
  REQUIRE(std::system((std::string("git init -q -b main '") + d.path.string() + "' && " + commit +
                       "one && " + g + "tag -a v1 -m v1 && " + commit + "two && " + g +
                       "branch fix-gzip && " + g + "tag light").c_str()) == 0);
  sm::git::Library lib;
  auto repo = sm::git::Repository::open(d.path);
  const std::string head = repo.resolve("HEAD");
  CHECK(head.size() == 40);
  CHECK(repo.resolve("main") == head);
  CHECK(repo.resolve("fix-gzip") == head);  // a branch with "-g" in its name
  CHECK(repo.resolve("light") == head);
  CHECK(repo.resolve(head.substr(0, 7)) == head);
  CHECK(repo.resolve("v1-1-g" + head.substr(0, 7)) == head);  // git describe's form
  const std::string first = repo.resolve("v1");  // an annotated tag, peeled to its commit
  CHECK(first != head);
  CHECK(repo.resolve("HEAD~1") == first);
  CHECK(repo.resolve("main^") == first);
  auto kind = [&](const std::string& rev) {
    try {
      repo.resolve(rev);
    } catch (const GitError& e) {
      return e.kind();
    }
    return ErrorKind::Other;
  };
  CHECK(kind("no-such-branch") == ErrorKind::UnknownRevision);
  CHECK(kind("fix-gzip~1") == ErrorKind::InvalidRevision);  // refused: would reach the regex
  CHECK(kind("$(touch x)") == ErrorKind::InvalidRevision);
  CHECK(kind("deadbeef") == ErrorKind::UnknownRevision);
}

TEST_CASE("git worker: a checkout's and a fetch's arguments read back as the same job; others are refused") {
  sm::test::TempDir d;
  REQUIRE(std::system(("git init -q -b main '" + d.path.string() + "'").c_str()) == 0);
  sm::git::Library lib;
  auto repo = sm::git::Repository::open(d.path);
  repo.set_extra_objects({"/q/incoming-1"});
  auto args = sm::git::checkout_args(repo, "/data/slot a", "slot-a-1", "abc");
  REQUIRE(args.at(0) == sm::git::kWorkerCommand);
  auto job = sm::git::parse_job({args.begin() + 1, args.end()});
  REQUIRE(job);
  CHECK(job->kind == sm::git::Job::Kind::Checkout);
  CHECK(job->repo == repo.workdir());
  CHECK(job->path == "/data/slot a");
  CHECK(job->name == "slot-a-1");
  CHECK(job->commit == "abc");
  CHECK(job->extra_objects == std::vector<std::filesystem::path>{"/q/incoming-1"});

  repo.set_extra_objects({});
  args = sm::git::fetch_args(repo, "origin", "");
  job = sm::git::parse_job({args.begin() + 1, args.end()});
  REQUIRE(job);
  CHECK(job->kind == sm::git::Job::Kind::Fetch);
  CHECK(job->name == "origin");
  CHECK(job->token_file.empty());
  CHECK(job->extra_objects.empty());

  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {}, {"checkout"}, {"checkout", "/r", "/p", "n"}, {"fetch", "/r", "origin"}, {"push", "/r", "a", "b", "c"},
           {"fetch", "", "origin", ""}})
    CHECK_MESSAGE(!sm::git::parse_job(bad), bad.size());
}
