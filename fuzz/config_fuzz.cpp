// slot-machine.json: any bytes give a Config or a ConfigError, nothing else.
#include <cstdint>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto loaded = sm::config::parse(std::string(reinterpret_cast<const char*>(data), size), "/base");
    (void)loaded;
  } catch (const sm::config::ConfigError&) {
  }
  return 0;
}
