#pragma once
// What git itself will check before it accepts a push to the deploying branch, checked
// by the pre-receive hook before it deploys: a push git then rejects must never have
// been deployed (production would run a commit the branch does not have).

#include <string>

namespace sm::cli {

/// One pushed ref update, as git gives it to pre-receive.
struct RefUpdate {
  std::string old_id, new_id, ref;
};

/// Why git will refuse `u` once the hook has passed it, or "" when it will accept it
/// (as far as receive-pack's own rules go): `receive.denyCurrentBranch` for the branch
/// checked out in a non-bare repository (with `updateInstead`: a clean work tree and
/// index, and no untracked file the new commit would overwrite, unless a
/// push-to-checkout hook takes that over), and `receive.denyNonFastForwards`.
/// Runs `git` (from PATH, no shell) in the hook's environment, which sees the pushed
/// objects in their quarantine. `git_dir` is the repository's (the hook's cwd).
std::string refusal_by_git(const RefUpdate& u, const std::string& git_dir);

}  // namespace sm::cli
