#pragma once
// Slot logs: size-based rotation and reading the last lines.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace sm::app {

/// When `log` is larger than `max_bytes`: shifts log.1 → log.2 ... (dropping log.<keep>),
/// copies `log` to log.1 and truncates `log` in place. In place, because the running
/// app holds it open with O_APPEND and goes on writing at the new end; lines written
/// during the copy can be lost (as with logrotate's copytruncate). keep == 0 only
/// truncates. Returns true when it rotated. Throws std::runtime_error on I/O errors.
bool rotate_if_needed(const std::filesystem::path& log, std::uintmax_t max_bytes, int keep);

/// The last `n` lines of `file` (all of them when it has fewer), read from the end so a
/// large file costs only what is returned; "" when missing. Sets `end` to the offset
/// read up to (where a follower continues).
std::string tail_lines(const std::filesystem::path& file, size_t n, std::uintmax_t& end);

/// The bytes appended to `file` since `offset`, which moves past them ("" when none; from
/// 0 again when the file shrank, rotated).
std::string read_new(const std::filesystem::path& file, std::uintmax_t& offset);

/// Appends "<time> ==> line" to `log`: what the daemon says among a process's output.
void append_note(const std::filesystem::path& log, const std::string& line);

/// The logs of named processes beside the web one (workers, cron jobs): <dir>/NAME.log.
class NamedLogs {
 public:
  NamedLogs(std::filesystem::path dir, std::uintmax_t max_bytes, int keep)
      : dir_(std::move(dir)), max_bytes_(max_bytes), keep_(keep) {}
  std::filesystem::path of(const std::string& name) const { return dir_ / (name + ".log"); }
  void note(const std::string& name, const std::string& line) const { append_note(of(name), line); }
  /// Creates the directory (a failure shows when a process cannot open its log).
  void create() const;
  /// Rotates each log over max_bytes as rotate_if_needed() does, saying so in it; a
  /// failure is a logged warning.
  void rotate(const std::vector<std::string>& names) const;

 private:
  std::filesystem::path dir_;
  std::uintmax_t max_bytes_;
  int keep_;
};

}  // namespace sm::app
