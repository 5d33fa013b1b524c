#include "git/quarantine.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "git/git.h"

namespace sm::git {
namespace fs = std::filesystem;

namespace {

/// git's tmp-objdir.c order for pack files; loose objects first (0).
int copy_priority(const fs::path& rel) {
  if (rel.begin()->string() != "pack") return 0;
  const std::string ext = rel.extension().string();
  if (ext == ".keep") return 1;
  if (ext == ".pack") return 2;
  if (ext == ".rev") return 3;
  if (ext == ".idx") return 4;
  return 5;
}

bool is_object_file(const fs::path& rel) {
  const std::string name = rel.filename().string();
  if (name.rfind("tmp_", 0) == 0 || name.rfind("incoming-", 0) == 0) return false;  // git's scratch files
  const std::string dir = rel.begin()->string();
  if (dir == "pack") return std::distance(rel.begin(), rel.end()) == 2;
  // Loose objects: xx/<38 hex>.
  return dir.size() == 2 && std::distance(rel.begin(), rel.end()) == 2 &&
         std::all_of(dir.begin(), dir.end(), ::isxdigit);
}

}  // namespace

void adopt_quarantine(const fs::path& quarantine, const fs::path& objects) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(quarantine, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const fs::path rel = it->path().lexically_relative(quarantine);
    if (is_object_file(rel)) files.push_back(rel);
  }
  if (ec)
    throw GitError(ErrorKind::Other, fmt::format("cannot read the push's objects in {}: {}", quarantine.string(),
                                                 ec.message()));
  std::stable_sort(files.begin(), files.end(),
                   [](const fs::path& a, const fs::path& b) { return copy_priority(a) < copy_priority(b); });
  for (const auto& rel : files) {
    const fs::path from = quarantine / rel, to = objects / rel;
    fs::create_directories(to.parent_path(), ec);
    if (link(from.c_str(), to.c_str()) == 0 || errno == EEXIST) continue;
    if (errno == EXDEV &&
        fs::copy_file(from, to, fs::copy_options::skip_existing, ec))  // another file system
      continue;
    throw GitError(ErrorKind::Other, fmt::format("cannot place the pushed object {} in {}: {}", rel.string(),
                                                 objects.string(), ec ? ec.message() : std::strerror(errno)));
  }
}

}  // namespace sm::git
