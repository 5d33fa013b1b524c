// Host names as routing sees them (src/hosts/): any bytes as a Host header, as a
// "hosts" entry, and as a Host line plus a target for the routing decision. normalise() must return a name that routes as itself (idempotent, no
// byte a Host may not carry), parse_pattern() a pattern or BadPattern, and a table of
// fixed apps must answer any normalised host without crashing.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "hosts/hosts.h"
#include "hosts/route.h"
#include "hosts/table.h"

namespace {
const sm::hosts::Table& table() {
  static const sm::hosts::Table t({{"blog", {sm::hosts::parse_pattern("blog.example.com")}},
                                   {"shop", {sm::hosts::parse_pattern("*.shop.example.com")}},
                                   {"api", {sm::hosts::parse_pattern("example.com/api")}}});
  return t;
}
const sm::hosts::Router& router() {
  static const sm::hosts::Router r({{"blog", {sm::hosts::parse_pattern("blog.example.com"),
                                              sm::hosts::parse_pattern("www.blog.example.com")}, true, "blog.example.com"},
                                    {"api", {sm::hosts::parse_pattern("example.com/api")}, true, ""},
                                    {"shop", {sm::hosts::parse_pattern("*.shop.example.com")}, false, ""}});
  return r;
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
  // The first line as a Host header, the rest as the request target.
  const size_t nl = in.find('\n');
  const auto d = router().decide(in.substr(0, nl), nl == std::string_view::npos ? "/" : in.substr(nl + 1), size & 1);
  using Kind = sm::hosts::Decision::Kind;
  if ((d.kind == Kind::Forward && (d.target.empty() || d.target.front() != '/' || d.app.empty())) ||
      (d.kind == Kind::Redirect && !d.target.starts_with("http")) ||
      ((d.kind == Kind::BadRequest || d.kind == Kind::NotFound) && !d.app.empty())) {
    fprintf(stderr, "decide: kind %d app [%s] target [%s]\n", static_cast<int>(d.kind), d.app.c_str(), d.target.c_str());
    __builtin_trap();
  }
  try {
    const auto p = sm::hosts::parse_pattern(in);
    if (p.host.empty() || (!p.prefix.empty() && p.prefix.front() != '/')) __builtin_trap();
  } catch (const sm::hosts::BadPattern&) {
  }
  return 0;
}
