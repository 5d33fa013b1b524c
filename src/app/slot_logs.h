#pragma once
// Slot logs: size-based rotation and reading the last lines.

#include <cstdint>
#include <filesystem>
#include <string>

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

}  // namespace sm::app
