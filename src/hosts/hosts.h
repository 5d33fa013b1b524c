#pragma once
// Host names as routing sees them (contract §13): the entries of an app's "hosts" (a
// name, or "*.domain" matching one label, with an optional path prefix) and the Host a
// request names, made comparable (lower case, no port, no trailing dot). Pure: the
// config checks entries with it, the proxy's host table matches with it.

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace sm::hosts {

/// The longest host name routing takes (DNS's limit).
inline constexpr size_t kMaxHostLength = 253;

/// One entry of an app's "hosts".
struct Pattern {
  std::string host;    // lower case, no trailing dot; "*.example.com" for a wildcard
  std::string prefix;  // "" (every path), or "/api" (no trailing slash)
  bool wildcard() const { return host.starts_with("*."); }
  /// "example.com/api", as it would be written.
  std::string text() const { return host + prefix; }
  bool operator==(const Pattern&) const = default;
};

/// What is wrong with a "hosts" entry.
struct BadPattern : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// Parses a "hosts" entry: "blog.example.com", "*.shop.example.com", "example.com/api".
/// Throws BadPattern saying what is wrong (empty, a port, a scheme, a bad character or
/// label, a wildcard other than one leading "*.", a prefix with "?", "#", "//", ".." ...).
Pattern parse_pattern(std::string_view entry);

/// The name a request's Host header (or an absolute-form target's authority) routes by:
/// lower case, the port and one trailing dot removed; IP literals kept ("[::1]" as is).
/// nullopt when it is not a host name routing can take: empty, blanks or control bytes,
/// longer than kMaxHostLength, a bad port, userinfo, an empty label, a character a
/// host name does not have. The proxy answers 400 to those.
std::optional<std::string> normalise(std::string_view host_header);

/// Whether `path` (a request target's path, query included) is under `prefix` ("" is
/// under everything; "/api" holds "/api", "/api/x", "/api?q", not "/apix").
bool under_prefix(std::string_view path, std::string_view prefix);

}  // namespace sm::hosts
