// state.json as found on disk after a crash, an edit or a bad disk: load_state gives a
// state or a warning, never throws, and what it gives can be saved again.
#include <cstdint>

#include "app/state.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = fuzz::scratch();
  fuzz::write_bytes(dir / "state.json", data, size);
  auto loaded = sm::app::load_state(dir);
  if (loaded.state) {
    sm::app::save_state(dir / "again", *loaded.state);
    if (!sm::app::load_state(dir / "again").state) __builtin_trap();  // round trip
  }
  return 0;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::filesystem::create_directories(fuzz::scratch() / "again");
  return 0;
}
