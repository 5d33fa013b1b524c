#pragma once
// Traffic control (contract §14) from the command line: `maintenance on|off`, `pause`,
// `resume`.

#include <optional>
#include <ostream>
#include <string>

#include "cli/client.h"

namespace sm::cli {

/// `maintenance on [--page FILE] [--retry-after S]` / `maintenance off`. The page is read
/// here (at most 1 MiB of UTF-8; otherwise exit 2 saying why). 0 when done, 1 when the
/// daemon refused or could not be reached.
int maintenance_command(const ClientOptions& o, bool on, const std::string& page_file,
                        std::optional<int> retry_after_s, std::ostream& out, std::ostream& err);

/// `pause [--timeout S]` and `resume`: 0 when done, 1 when refused or unreachable.
int pause_command(const ClientOptions& o, std::optional<int> timeout_s, std::ostream& out, std::ostream& err);
int resume_command(const ClientOptions& o, std::ostream& out, std::ostream& err);

/// Whether `text` is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(const std::string& text);

}  // namespace sm::cli
