#pragma once
// A push's quarantined objects, made the repository's own before a deploy checks them
// out: git deletes the quarantine when it rejects the push (a failed deploy, a rule
// git applies after the hook), and a slot's HEAD must never name a vanished object.

#include <filesystem>

namespace sm::git {

/// Hard-links (copies across file systems) every object file under `quarantine` into
/// `objects`, the way git migrates an accepted push: loose objects to their fan-out
/// directory, packs in git's order (.keep, .pack, .rev, .idx, the rest) so a reader
/// never meets an index without its pack. Objects already there are kept. Objects that
/// no ref reaches are garbage that `git gc` prunes; a slot's HEAD keeps its own alive.
/// Throws GitError naming the file that could not be placed.
void adopt_quarantine(const std::filesystem::path& quarantine, const std::filesystem::path& objects);

}  // namespace sm::git
