// journal.ndjson as found on disk (torn lines, garbage, huge lines): journal_read gives
// objects only, and never throws.
#include <cstdint>

#include "daemon/journal.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = fuzz::scratch() / "journal.ndjson";
  fuzz::write_bytes(file, data, size);
  for (const auto& e : sm::daemon::journal_read(file, 50))
    if (!e.is_object()) __builtin_trap();
  return 0;
}
