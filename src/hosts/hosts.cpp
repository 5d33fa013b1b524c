#include "hosts/hosts.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace sm::hosts {

namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool label_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }

/// Whether `name` (lower case, no trailing dot) is a DNS name or an IPv4 literal: labels
/// of 1-63 letters, digits, '-' or '_', not starting or ending with '-'.
bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostLength) return false;
  size_t from = 0;
  for (;;) {
    const size_t dot = name.find('.', from);
    const std::string_view label = name.substr(from, dot == std::string_view::npos ? name.npos : dot - from);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    if (!std::all_of(label.begin(), label.end(), label_char)) return false;
    if (dot == std::string_view::npos) return true;
    from = dot + 1;
  }
}

/// "[v6]" with hex digits, ':' and '.' inside (an IPv4 tail).
bool valid_ipv6_literal(std::string_view s) {
  if (s.size() < 4 || s.front() != '[' || s.back() != ']' || s.size() > 47) return false;
  const std::string_view in = s.substr(1, s.size() - 2);
  return in.find(':') != std::string_view::npos && std::all_of(in.begin(), in.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
         });
}

std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

}  // namespace

Pattern parse_pattern(std::string_view entry) {
  const auto bad = [&](const std::string& why) {
    return BadPattern(fmt::format("host \"{}\": {}", std::string(entry.substr(0, 300)), why));
  };
  if (entry.empty()) throw bad("empty; give a name such as example.com or *.example.com");
  if (entry.find("://") != std::string_view::npos) throw bad("a host name, not a URL (no scheme)");
  const size_t slash = entry.find('/');
  std::string_view name = entry.substr(0, slash);
  Pattern p;
  if (slash != std::string_view::npos) {
    std::string_view prefix = entry.substr(slash);
    while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
    if (prefix == "/") prefix = "";
    for (char c : prefix)
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '?' || c == '#' || c == '%' || c == '\\')
        throw bad("the path prefix may not hold blanks, control bytes, '?', '#', '%' or '\\'");
    if (prefix.find("//") != std::string_view::npos || prefix.find("/./") != std::string_view::npos ||
        prefix.find("/../") != std::string_view::npos || prefix.ends_with("/..") || prefix.ends_with("/."))
      throw bad("the path prefix must be plain segments (no //, . or ..)");
    p.prefix = std::string(prefix);
  }
  if (name.find(':') != std::string_view::npos)
    throw bad("no port: every app is reached on the server's \"port\" and \"tls.port\"");
  if (name.ends_with('.')) name.remove_suffix(1);
  std::string host = lowered(name);
  const bool wildcard = host.starts_with("*.");
  if (host.find('*', wildcard ? 1 : 0) != std::string::npos)
    throw bad("a wildcard is one leading \"*.\" (matching one label), as in *.example.com");
  if (!valid_name(wildcard ? std::string_view(host).substr(2) : std::string_view(host)))
    throw bad(fmt::format("not a host name: labels of 1-63 letters, digits, '-' or '_', separated by dots, "
                          "at most {} characters",
                          kMaxHostLength));
  p.host = std::move(host);
  return p;
}

std::optional<std::string> normalise(std::string_view h) {
  if (h.empty() || h.size() > kMaxHostLength + 7) return std::nullopt;  // name + ":65535" + "."
  std::string_view name = h, port;
  if (h.front() == '[') {
    const size_t close = h.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    name = h.substr(0, close + 1);
    const std::string_view rest = h.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
    if (!valid_ipv6_literal(name) || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    return lowered(name);
  }
  if (const size_t colon = h.find(':'); colon != std::string_view::npos) {
    name = h.substr(0, colon);
    port = h.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
  }
  if (name.ends_with('.')) name.remove_suffix(1);
  std::string out = lowered(name);
  if (!valid_name(out)) return std::nullopt;
  return out;
}

bool under_prefix(std::string_view path, std::string_view prefix) {
  if (prefix.empty()) return true;
  if (!path.starts_with(prefix)) return false;
  if (path.size() == prefix.size()) return true;
  const char next = path[prefix.size()];
  return next == '/' || next == '?';
}

}  // namespace sm::hosts
