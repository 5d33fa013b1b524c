// env files: any bytes give variables or a ConfigError naming the line.
#include <cstdint>
#include <string>

#include "config/config.h"
#include "config/env_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto vars = sm::config::parse_env(std::string(reinterpret_cast<const char*>(data), size), ".env");
    (void)vars;
  } catch (const sm::config::ConfigError&) {
  }
  return 0;
}
