#pragma once
// `slot-machine run -- CMD ARGS…` (contract §16): a one-off command in the live (or
// previous) slot with the app's environment. On this machine the CLI runs it itself, on
// its own terminal (stdin, a TTY, Ctrl-C, the exit code), after the daemon says where
// and how, and reports the exit for the journal; with --remote the daemon runs it and
// streams its output back (no stdin).

#include <ostream>
#include <string>
#include <vector>

#include "cli/client.h"

namespace sm::cli {

/// Returns the command's exit code (128+N when signal N ended it), or 1 when the daemon
/// refused or could not be reached (its reason on `err`), 2 for no command.
int run_command(const ClientOptions& o, const std::string& slot, const std::vector<std::string>& argv,
                std::ostream& out, std::ostream& err);

}  // namespace sm::cli
