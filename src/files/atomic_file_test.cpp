#include "files/atomic_file.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <stdexcept>

#include "test_support.h"

namespace fs = std::filesystem;
using sm::files::write_atomic;

namespace {
mode_t mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}
}  // namespace

TEST_CASE("write_atomic replaces the file whole, with the mode asked for whatever the umask") {
  sm::test::TempDir t;
  const fs::path p = t.path / "key.pem";
  write_atomic(p, "first\n", 0600);
  CHECK(sm::test::slurp(p) == "first\n");
  CHECK(mode_of(p) == 0600);
  const mode_t old = ::umask(0077);
  write_atomic(p, "second", 0755);
  ::umask(old);
  CHECK(sm::test::slurp(p) == "second");
  CHECK(mode_of(p) == 0755);
  write_atomic(p, "");
  CHECK(sm::test::slurp(p).empty());
  CHECK_FALSE(fs::exists(t.path / "key.pem.tmp"));
}

TEST_CASE("write_atomic that cannot write says which file and why, and leaves the old one") {
  sm::test::TempDir t;
  const fs::path p = t.path / "missing-dir" / "state.json";
  const std::string tmp_error = "cannot write " + (t.path / "missing-dir" / "state.json.tmp").string();
  CHECK_THROWS_WITH_AS(write_atomic(p, "x"), doctest::Contains(tmp_error.c_str()), std::runtime_error);
  // A directory in the way of the rename: the error names the target, the old entry stays.
  const fs::path blocked = t.path / "blocked";
  fs::create_directories(blocked / "inside");
  const std::string rename_error = "cannot write " + blocked.string() + ":";
  CHECK_THROWS_WITH_AS(write_atomic(blocked, "x"), doctest::Contains(rename_error.c_str()), std::runtime_error);
  CHECK(fs::is_directory(blocked / "inside"));
  CHECK_FALSE(fs::exists(t.path / "blocked.tmp"));
}
