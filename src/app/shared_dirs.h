#pragma once
// Shared directories (contract §10, config "shared_dirs"): files an app writes (SQLite
// databases, uploads) live in <data>/shared/<dir>, and every slot has <slot>/<dir> as a
// symlink to it, so they survive deploys and rollbacks.

#include <filesystem>
#include <string>
#include <vector>

namespace sm::app {

/// Before a checkout into `slot`: replaces the links to the shared directories by empty
/// directories (the links only, never what they point to), so that the checkout never
/// writes through them.
void unlink_shared(const std::filesystem::path& slot, const std::vector<std::string>& dirs);

/// After a checkout into `slot`, before setup: makes each <slot>/<dir> a symlink to
/// <shared_root>/<dir>. On first use the shared directory is created and seeded with a
/// copy of the checkout's <dir>, if it has one; later, the checkout's <dir> is set aside
/// (the shared one wins). Returns "" or what is wrong: a tracked *file* at <dir>, or a
/// filesystem error, naming the path.
std::string link_shared(const std::filesystem::path& slot, const std::filesystem::path& shared_root,
                        const std::vector<std::string>& dirs);

}  // namespace sm::app
