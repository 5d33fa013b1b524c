// journal.ndjson as found on disk (torn lines, garbage, huge lines): journal_read gives
// objects only, and never throws; a page after skipping some is the same entries as the
// tail of a longer read.
#include <cstdint>

#include "app/journal.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = fuzz::scratch() / "journal.ndjson";
  fuzz::write_bytes(file, data, size);
  const auto all = sm::app::journal_read(file, 50);
  for (const auto& e : all)
    if (!e.is_object()) __builtin_trap();
  const size_t skip = size % 5;
  const auto page = sm::app::journal_read(file, 10, skip);
  for (size_t i = 0; i < page.size(); ++i)
    if (skip + i >= all.size() || page[i] != all[skip + i]) __builtin_trap();
  return 0;
}
