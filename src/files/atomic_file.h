#pragma once
// Whole-file writes that a crash or power loss cannot leave half done.

#include <sys/types.h>

#include <filesystem>
#include <string>

namespace sm::files {

/// Replaces `path` with `text` atomically: a temporary file beside it (`<path>.tmp`) gets
/// the bytes and `mode` (whatever the umask), is fsynced and renamed over `path`, and the
/// directory is fsynced so the rename survives power loss. Readers see the old file or
/// the new one, never a part. Throws std::runtime_error "cannot write <file>: <reason>";
/// the temporary file is removed then and `path` is untouched.
void write_atomic(const std::filesystem::path& path, const std::string& text, mode_t mode = 0644);

}  // namespace sm::files
