#include "files/owner.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sm::files {
namespace fs = std::filesystem;

std::string chown_tree(const fs::path& root, uid_t uid, gid_t gid) {
  if (lchown(root.c_str(), uid, gid) != 0)
    return fmt::format("cannot give {} to uid {}: {}", root.string(), uid, std::strerror(errno));
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end; !ec && it != end;
       it.increment(ec))
    if (lchown(it->path().c_str(), uid, gid) != 0)
      return fmt::format("cannot give {} to uid {}: {}", it->path().string(), uid, std::strerror(errno));
  if (ec) return fmt::format("cannot list {}: {}", root.string(), ec.message());
  return "";
}

}  // namespace sm::files
