#include <doctest/doctest.h>

#include <fstream>

#include "test_support.h"
#include "app/journal.h"
#include "app/state.h"

namespace fs = std::filesystem;
using namespace sm::app;
using sm::test::TempDir;
using sm::test::slurp;

namespace {
const std::string kA(40, 'a'), kB(40, 'b');
}  // namespace

TEST_CASE("state: round trip, with live/prev symlinks") {
  TempDir d;
  PersistedState s;
  s.live = SlotRecord{'b', kB, 1234, "tok.1-2", 10001, 10002, "2026-11-22T00:00:00Z", "", ""};
  s.previous = SlotRecord{'a', kA, 0, "", 0, 0, "2026-11-21T00:00:00Z", "", ""};
  s.last_deploy_time = "2026-11-22T00:00:00Z";
  save_state(d.path, s);
  auto l = load_state(d.path);
  REQUIRE(l.state);
  CHECK(l.warning.empty());
  CHECK(l.state->live->slot == 'b');
  CHECK(l.state->live->commit == kB);
  CHECK(l.state->live->pgid == 1234);
  CHECK(l.state->live->token == "tok.1-2");
  CHECK(l.state->live->port == 10001);
  CHECK(l.state->previous->commit == kA);
  CHECK(fs::read_symlink(d.path / "live") == "slot-b");
  CHECK(fs::read_symlink(d.path / "prev") == "slot-a");
  CHECK_FALSE(fs::exists(d.path / "state.json.tmp"));

  // A previous slot whose app runs on as a standby keeps its process and ports.
  s.previous = SlotRecord{'a', kA, 999, "tok.3", 10003, 10004, "", "frozen", "2026-11-22T00:10:00Z"};
  save_state(d.path, s);
  auto sb = load_state(d.path).state->previous;
  REQUIRE(sb);
  CHECK(sb->standby == "frozen");
  CHECK(sb->standby_until == "2026-11-22T00:10:00Z");
  CHECK(sb->pgid == 999);
  CHECK(sb->token == "tok.3");
  CHECK(sb->internal_port == 10004);

  s.previous.reset();
  save_state(d.path, s);
  CHECK_FALSE(fs::is_symlink(d.path / "prev"));
  CHECK_FALSE(load_state(d.path).state->previous);
}

TEST_CASE("state: missing is fresh and quiet; truncated or corrupt is fresh with a warning") {
  TempDir d;
  auto none = load_state(d.path);
  CHECK_FALSE(none.state);
  CHECK(none.warning.empty());

  PersistedState s;
  s.live = SlotRecord{'a', kA, 1, "t", 1, 1, "", "", ""};
  save_state(d.path, s);
  const std::string text = slurp(d.path / "state.json");
  for (const std::string& bad : {text.substr(0, text.size() / 2), std::string("garbage"), std::string("[]"),
                                 std::string(R"({"format":1,"live":{"slot":"c","commit":")") + kA + "\"}}",
                                 std::string(R"({"format":1,"live":{"slot":"a","commit":"abc"}})"),
                                 std::string(R"({"format":9})")}) {
    std::ofstream(d.path / "state.json", std::ios::trunc) << bad;
    auto l = load_state(d.path);
    CHECK_FALSE(l.state);
    CHECK(l.warning.find("state.json is unreadable") != std::string::npos);
    CHECK(l.warning.find("kept") != std::string::npos);
  }
}

TEST_CASE("journal: newest first, limited, torn lines skipped") {
  TempDir d;
  const fs::path f = d.path / "journal.ndjson";
  CHECK(journal_read(f, 10).empty());
  for (int i = 0; i < 5; ++i) journal_append(f, {{"n", i}});
  std::ofstream(f, std::ios::app) << "{\"n\": 5, \"torn";  // a crash mid-write
  auto all = journal_read(f, 10);
  REQUIRE(all.size() == 5);
  CHECK(all.front()["n"] == 4);
  CHECK(all.back()["n"] == 0);
  journal_append(f, {{"n", 6}});  // lands on its own line after the torn one
  CHECK(journal_read(f, 1)[0]["n"] == 6);
  CHECK(journal_read(f, 10).size() == 6);
  auto two = journal_read(f, 3);
  REQUIRE(two.size() == 3);
  CHECK(two[2]["n"] == 3);
  // Pages: skip counts entries, not the torn line.
  auto page = journal_read(f, 2, 2);
  REQUIRE(page.size() == 2);
  CHECK(page[0]["n"] == 3);
  CHECK(page[1]["n"] == 2);
  auto last = journal_read(f, 10, 4);
  REQUIRE(last.size() == 2);
  CHECK(last[1]["n"] == 0);
  CHECK(journal_read(f, 10, 6).empty());
}
