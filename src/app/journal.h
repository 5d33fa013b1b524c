#pragma once
// The history: <data>/journal.ndjson, one JSON object per line, appended once per
// deploy, rollback, failed operation, adoption and restart. Never rewritten.

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "app/events.h"

namespace sm::app {

/// Appends `entry` as one line (a single write(2) with O_APPEND, then fsync).
/// Throws std::runtime_error naming the file when it cannot.
void journal_append(const std::filesystem::path& file, const nlohmann::json& entry);

/// The journal as a listener: appends every Finished event's fields to `file` (a
/// failure to write is logged; the operation's answer stands).
[[nodiscard]] Events::Subscription journal_to(Events& events, const std::filesystem::path& file);

/// The newest `limit` entries after skipping the newest `skip`, newest first: a page of
/// the history. Lines that are not JSON objects (a torn last line after a crash, say)
/// are skipped and not counted. Only the lines of the page are parsed. A missing file is
/// an empty history.
std::vector<nlohmann::json> journal_read(const std::filesystem::path& file, size_t limit, size_t skip = 0);

}  // namespace sm::app
