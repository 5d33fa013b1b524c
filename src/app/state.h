#pragma once
// What the daemon must not forget across a restart: which slot is live (and its running
// process group and ports) and which is previous. Kept in <data>/state.json, written
// atomically, with `live` and `prev` symlinks to the slot directories for humans; and
// the live version's workers (pgid, token), so a new daemon adopts them too.

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sm::app {

struct SlotRecord {
  char slot = 0;           // 'a' or 'b'
  std::string commit;      // full hash
  pid_t pgid = 0;          // live only: the app's process group (its leader's pid)
  std::string token;       // live only: SLOT_MACHINE_RUN of that group
  int port = 0, internal_port = 0;  // live only
  std::string since;       // RFC 3339: when it became live (live) / was deployed
  // previous only, while its app runs on as a standby: "warm" or "frozen" ("" when not),
  // until when (RFC 3339); pgid, token and ports are then the standby app's.
  std::string standby, standby_until;
};

/// A running worker as state.json keeps it, so that a new daemon adopts it.
struct WorkerRecord {
  std::string name, command, commit;
  pid_t pgid = 0;
  std::string token, since;
  int restarts = 0;
};

struct PersistedState {
  std::optional<SlotRecord> live, previous;
  std::string last_deploy_time;
  std::vector<WorkerRecord> workers;  // the live version's
};

/// Writes <dir>/state.json (temp file + fsync + rename + fsync of the directory) and
/// points <dir>/live and <dir>/prev at the slot directories (removed when unset).
/// Throws std::runtime_error naming the file when it cannot.
void save_state(const std::filesystem::path& dir, const PersistedState& s);

struct LoadedState {
  std::optional<PersistedState> state;  // nothing when missing or unusable
  std::string warning;                  // why it was unusable ("" when fine or missing)
};

/// Reads <dir>/state.json. Missing: no state, no warning. Truncated, corrupt or with
/// impossible values: no state and a warning that says what was wrong. Never throws.
LoadedState load_state(const std::filesystem::path& dir);

}  // namespace sm::app
