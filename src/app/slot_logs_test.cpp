#include <doctest/doctest.h>

#include <fstream>

#include "test_support.h"
#include "app/slot_logs.h"

namespace fs = std::filesystem;
using namespace sm::app;
using sm::test::TempDir;
using sm::test::slurp;

TEST_CASE("logs: tail_lines returns the last n lines, with or without a final newline") {
  TempDir d;
  const fs::path f = d.path / "x.log";
  std::uintmax_t end = 99;
  CHECK(tail_lines(f, 5, end).empty());
  CHECK(end == 0);
  std::ofstream(f) << "one\ntwo\nthree\n";
  CHECK(tail_lines(f, 2, end) == "two\nthree\n");
  CHECK(end == 14);
  CHECK(tail_lines(f, 10, end) == "one\ntwo\nthree\n");
  CHECK(tail_lines(f, 0, end).empty());
  std::ofstream(f, std::ios::app) << "four";
  CHECK(tail_lines(f, 2, end) == "three\nfour");
  std::ofstream big(f, std::ios::trunc);
  for (int i = 0; i < 50000; ++i) big << "line " << i << "\n";
  big.close();
  CHECK(tail_lines(f, 3, end) == "line 49997\nline 49998\nline 49999\n");
}

TEST_CASE("logs: rotation keeps log_keep files and truncates in place") {
  TempDir d;
  const fs::path f = d.path / "slot-a.log";
  std::ofstream(f) << std::string(100, 'a');
  CHECK_FALSE(rotate_if_needed(f, 1000, 2));
  // An app holding the log open with O_APPEND keeps writing to it after the rotation.
  std::ofstream app(f, std::ios::app);
  for (char c : {'b', 'c', 'd'}) {
    app << std::string(2000, c) << std::flush;
    CHECK(rotate_if_needed(f, 1000, 2));
    CHECK(fs::file_size(f) == 0);
  }
  app << "after\n" << std::flush;
  CHECK(slurp(f) == "after\n");
  CHECK(slurp(d.path / "slot-a.log.1") == std::string(2000, 'd'));
  CHECK(slurp(d.path / "slot-a.log.2") == std::string(2000, 'c'));
  CHECK_FALSE(fs::exists(d.path / "slot-a.log.3"));
  std::ofstream(f, std::ios::app) << std::string(2000, 'e');
  CHECK(rotate_if_needed(f, 1000, 0));  // keep 0: truncate only
  CHECK(fs::file_size(f) == 0);
  CHECK(slurp(d.path / "slot-a.log.1") == std::string(2000, 'd'));
}
