// Host names as routing sees them (src/hosts/): any bytes as a Host header and as a
// "hosts" entry. normalise() must return a name that routes as itself (idempotent, no
// byte a Host may not carry), parse_pattern() a pattern or BadPattern, and a table of
// fixed apps must answer any normalised host without crashing.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "hosts/hosts.h"
#include "hosts/table.h"

namespace {
const sm::hosts::Table& table() {
  static const sm::hosts::Table t({{"blog", {sm::hosts::parse_pattern("blog.example.com")}},
                                   {"shop", {sm::hosts::parse_pattern("*.shop.example.com")}},
                                   {"api", {sm::hosts::parse_pattern("example.com/api")}}});
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto n = sm::hosts::normalise(in)) {
    for (char c : *n)
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || (c >= 'A' && c <= 'Z')) {
        fprintf(stderr, "normalise kept byte 0x%02x\n", static_cast<unsigned char>(c));
        __builtin_trap();
      }
    if (sm::hosts::normalise(*n) != n) {
      fprintf(stderr, "normalise is not idempotent on [%s]\n", n->c_str());
      __builtin_trap();
    }
    const size_t slash = in.find('/');
    table().find(*n, slash == std::string_view::npos ? "/" : in.substr(slash));
  }
  try {
    const auto p = sm::hosts::parse_pattern(in);
    if (p.host.empty() || (!p.prefix.empty() && p.prefix.front() != '/')) __builtin_trap();
  } catch (const sm::hosts::BadPattern&) {
  }
  return 0;
}
