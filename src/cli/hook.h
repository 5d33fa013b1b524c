#pragma once
// Deploy on `git push` (contract §9): `slot-machine hook install` writes a pre-receive
// hook into the repository the daemon deploys from; git runs it with the pushed refs on
// stdin while the pushed objects are still in its quarantine, and it deploys a push of
// the chosen branch through the running daemon, printing each stage (the pusher sees
// them as `remote:` lines). A deploy that fails rejects the push.

#include <filesystem>
#include <istream>
#include <ostream>
#include <string>

#include "cli/client.h"

namespace sm::cli {

struct HookOptions {
  std::filesystem::path repo = ".";  // the repository pushes go to (bare or not)
  std::string branch;                // "" = the branch its HEAD names
  std::filesystem::path config = "slot-machine.json";  // where the hook finds the daemon
  bool force = false;                // replace a pre-receive hook that is not ours
  std::string app;                   // a server config's app pushes deploy ("": found by its repo)
};

/// Writes <hooks>/pre-receive. 0, or 1 with the reason on `err` (2 for bad options).
int hook_install(const HookOptions& o, std::ostream& out, std::ostream& err);
/// Removes the pre-receive hook `install` wrote (and nothing else).
int hook_uninstall(const HookOptions& o, std::ostream& out, std::ostream& err);

/// What the hook runs: reads "<old> <new> <ref>" lines from `in` and deploys the new
/// commit of refs/heads/<branch> (objects from $GIT_QUARANTINE_PATH). 0 lets the push
/// through; 1 rejects it (deploy failed, daemon busy or unreachable).
int hook_run(const ClientOptions& client, const std::string& branch, std::istream& in, std::ostream& out,
             std::ostream& err);

/// The first line of every hook `install` writes: how `uninstall` recognises its own.
inline constexpr const char* kHookMarker = "# slot-machine pre-receive hook";

}  // namespace sm::cli
