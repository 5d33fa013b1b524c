#pragma once
// Shared by the libFuzzer targets: scratch directories and small git repositories made
// once per fuzzing process (LLVMFuzzerInitialize), outside the measured loop.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace fuzz {

/// A directory under /tmp for the whole fuzzing process, removed at exit.
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sm-fuzz-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    std::atexit([] { std::filesystem::remove_all(scratch()); });
    return std::filesystem::path(tmpl);
  }();
  return dir;
}

/// A git repository at `dir` with `commits` commits (tags v1.., branch "side"), made with
/// the git command line; 0 commits: an empty repository.
inline void make_repo(const std::filesystem::path& dir, int commits) {
  std::string cmd = "git init -q -b main '" + dir.string() + "'";
  for (int i = 1; i <= commits; ++i)
    cmd += " && echo " + std::to_string(i) + " > '" + dir.string() + "/VERSION' && git -C '" +
           dir.string() + "' add VERSION && git -C '" + dir.string() +
           "' -c user.email=f@example.com -c user.name=fuzz commit -qm v" + std::to_string(i) +
           " && git -C '" + dir.string() + "' tag v" + std::to_string(i);
  if (commits > 0) cmd += " && git -C '" + dir.string() + "' branch side HEAD~" + std::to_string(commits > 1);
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot make the fuzz repository");
}

/// Writes `size` bytes to `path` (replacing it).
void write_bytes(const std::filesystem::path& path, const uint8_t* data, size_t size);

}  // namespace fuzz

#include <fstream>
inline void fuzz::write_bytes(const std::filesystem::path& path, const uint8_t* data, size_t size) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}
