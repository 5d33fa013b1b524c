#include "app/shared_dirs.h"

#include <doctest/doctest.h>

#include <fstream>

#include "test_support.h"

namespace fs = std::filesystem;
using namespace sm::app;
using sm::test::slurp;

TEST_CASE("shared dirs: seeded from the first checkout, linked into every slot, kept after") {
  sm::test::TempDir t;
  const fs::path a = t.path / "slot-a", b = t.path / "slot-b", shared = t.path / "shared";
  fs::create_directories(a / "data");
  std::ofstream(a / "data" / "seed.txt") << "from the commit";
  fs::create_directories(b);
  const std::vector<std::string> dirs = {"data", "var/uploads"};

  REQUIRE(link_shared(a, shared, dirs) == "");
  CHECK(fs::is_symlink(a / "data"));
  CHECK(fs::read_symlink(a / "data") == shared / "data");
  CHECK(slurp(shared / "data" / "seed.txt") == "from the commit");
  CHECK(fs::is_directory(shared / "var" / "uploads"));
  CHECK(fs::is_symlink(a / "var" / "uploads"));
  std::ofstream(a / "data" / "app.db") << "written by the app";

  // Slot b's checkout has its own data/ (a newer seed): the shared one wins.
  fs::create_directories(b / "data");
  std::ofstream(b / "data" / "seed.txt") << "newer";
  REQUIRE(link_shared(b, shared, dirs) == "");
  CHECK(slurp(b / "data" / "app.db") == "written by the app");
  CHECK(slurp(b / "data" / "seed.txt") == "from the commit");
  CHECK(link_shared(b, shared, dirs) == "");  // idempotent

  // Before the next checkout the links go, never what they point to.
  unlink_shared(a, dirs);
  CHECK_FALSE(fs::is_symlink(a / "data"));
  CHECK(fs::is_empty(a / "data"));
  CHECK(slurp(shared / "data" / "app.db") == "written by the app");

  // A tracked file where a shared directory goes is an error naming it; nothing is lost.
  fs::remove(a / "data");
  std::ofstream(a / "data") << "a file";
  const std::string err = link_shared(a, shared, dirs);
  CHECK(err.find("\"data\" is a file in this commit") != std::string::npos);
  CHECK(slurp(shared / "data" / "app.db") == "written by the app");
}
