#include "app/shared_dirs.h"

#include <fmt/format.h>

namespace sm::app {
namespace fs = std::filesystem;

void unlink_shared(const fs::path& slot, const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(slot / d, ec))) continue;
    fs::remove(slot / d, ec);
    // An empty directory in its place: libgit2 does not write a tracked file whose path
    // was a tracked directory that is missing altogether, but it does replace an empty one.
    fs::create_directory(slot / d, ec);
  }
}

std::string link_shared(const fs::path& slot, const fs::path& shared_root,
                        const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    const fs::path in_slot = slot / d, shared = shared_root / d;
    std::error_code ec;
    const auto st = fs::symlink_status(in_slot, ec);
    if (fs::is_symlink(st)) {
      if (fs::read_symlink(in_slot, ec) == shared) continue;
      fs::remove(in_slot, ec);
    } else if (fs::exists(st) && !fs::is_directory(st)) {
      return fmt::format("shared_dirs: \"{}\" is a file in this commit, not a directory; remove it "
                         "from the repository or from \"shared_dirs\"",
                         d);
    }
    const bool tracked_dir = fs::is_directory(st);
    ec.clear();  // a missing <dir> in the slot is no error
    if (!fs::exists(shared, ec)) {
      fs::create_directories(shared.parent_path(), ec);
      if (!ec && tracked_dir)
        fs::copy(in_slot, shared, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
      else if (!ec)
        fs::create_directory(shared, ec);
      if (ec) return fmt::format("shared_dirs: cannot create {}: {}", shared.string(), ec.message());
    }
    if (tracked_dir) fs::remove_all(in_slot, ec);  // the shared directory wins
    if (ec) return fmt::format("shared_dirs: cannot set aside {}: {}", in_slot.string(), ec.message());
    fs::create_directories(in_slot.parent_path(), ec);
    if (!ec) fs::create_directory_symlink(shared, in_slot, ec);
    if (ec) return fmt::format("shared_dirs: cannot link {} to {}: {}", in_slot.string(), shared.string(), ec.message());
  }
  return "";
}

}  // namespace sm::app
