#pragma once
// What the operation-control specs share (setup_timeout, cancel, restart, wait):
// a setup that hangs on demand, reading the stage and the journal, a large commit.

#include <fstream>
#include <string>

#include "harness.h"

namespace spec {

// Setup hangs in a commit that has a `hang` file: the whole group (a plain background
// child, one that left the group with setsid, and the setup itself) must be killed.
inline const char* kHangingSetup =
    "if [ -e hang ]; then echo installing; sleep 1000 & setsid sleep 1000 & exec sleep 1000; fi";

/// Waits until the daemon reports `operation` at `stage`.
inline bool wait_stage(Daemon& d, const std::string& operation, const std::string& stage) {
  auto s = d.wait_status([&](const json& j) { return j["operation"] == operation && j["stage"] == stage; },
                         10s);
  return s["operation"] == operation && s["stage"] == stage;
}

inline json last_journal_entry(Daemon& d) {
  return http_get(d.api_port(), "/history?limit=1").json_body()["entries"][0];
}

/// Commits `n` one-line files under big/ (with git fast-import: seconds saved) on top of
/// HEAD; returns the hash. Checking 30,000 files out takes libgit2 about two seconds here.
inline std::string commit_many_files(AppRepo& repo, int n) {
  const fs::path stream = repo.home() / "big.fast-import";
  {
    std::ofstream out(stream);
    out << "blob\nmark :1\ndata 2\nx\n"
        << "commit refs/heads/main\ncommitter spec <spec@example.com> 0 +0000\ndata 4\nbig\n"
        << "from " << sh("git rev-parse HEAD", repo.dir()).substr(0, 40) << "\n";
    for (int i = 0; i < n; ++i) out << "M 100644 :1 big/d" << i / 1000 << "/f" << i << "\n";
  }
  sh("git fast-import --quiet < " + stream.string() + " && git reset -q --hard main", repo.dir());
  std::string hash = sh("git rev-parse HEAD", repo.dir());
  return hash.substr(0, 40);
}

}  // namespace spec
