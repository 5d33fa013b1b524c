#pragma once
// Handing a directory tree to another user (one of a server's apps with "user").

#include <sys/types.h>

#include <filesystem>
#include <string>

namespace sm::files {

/// Makes `uid`:`gid` the owner of `root` and of everything under it, symlinks
/// themselves rather than what they point to. Returns "" or what failed (with the path).
std::string chown_tree(const std::filesystem::path& root, uid_t uid, gid_t gid);

}  // namespace sm::files
