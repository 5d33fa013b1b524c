#pragma once
// Helpers the daemon's source files share (not part of its interface).

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <string>

#include "app/app.h"
#include "log/log.h"

namespace sm::app {

/// What a cancelled operation's error says (after "<operation> failed at <stage>: ").
inline const std::string kCancelledError = "cancelled (slot-machine cancel / POST /cancel)";

inline constexpr const char* kBusy = "another deploy or rollback is in progress; try again when it ends";

inline OpResult refused(OpStatus status, std::string error) {
  OpResult r;
  r.status = status;
  r.error = std::move(error);
  return r;
}

inline std::uintmax_t file_size_or_zero(const std::filesystem::path& p) {
  std::error_code ec;
  auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

/// A short, stable id for the data dir, so two daemons on one repo get distinct
/// worktree names.
inline std::string data_dir_id(const std::filesystem::path& dir) {
  uint32_t h = 2166136261u;
  for (unsigned char ch : dir.string()) h = (h ^ ch) * 16777619u;
  return fmt::format("{:08x}", h);
}

/// A wall-clock time as RFC 3339 ("2026-11-23T10:00:00Z").
inline std::string rfc3339(std::chrono::system_clock::time_point t) {
  return log::rfc3339(std::chrono::system_clock::to_time_t(t));
}

}  // namespace sm::app
