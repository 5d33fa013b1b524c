// The API's Prefer header parser (src/api/prefer.cpp) on any bytes: it must not crash,
// and what it returns must be either a wait in range or an error, never both.
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "api/prefer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = sm::api::parse_prefer_wait(std::string_view(reinterpret_cast<const char*>(data), size));
  if (p.seconds && (!p.error.empty() || *p.seconds < 0 || *p.seconds > sm::api::kMaxWaitSeconds)) {
    fprintf(stderr, "parse_prefer_wait: wait %ld with error [%s]\n", *p.seconds, p.error.c_str());
    __builtin_trap();
  }
  if (p.error.size() > 300) {
    fprintf(stderr, "parse_prefer_wait: error of %zu bytes\n", p.error.size());
    __builtin_trap();
  }
  return 0;
}
