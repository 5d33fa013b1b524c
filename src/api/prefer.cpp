#include "api/prefer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace sm::api {

namespace {

std::string_view trim(std::string_view s) {
  const size_t first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

bool is_wait(std::string_view name) {
  return name.size() == 4 && std::equal(name.begin(), name.end(), "wait", [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

}  // namespace

PreferWait parse_prefer_wait(std::string_view header) {
  for (size_t from = 0; from <= header.size();) {
    size_t comma = header.find(',', from);
    if (comma == std::string_view::npos) comma = header.size();
    const std::string_view item = trim(header.substr(from, comma - from));
    from = comma + 1;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || !is_wait(trim(item.substr(0, eq)))) continue;
    std::string_view value = trim(item.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    const bool digits = !value.empty() && value.size() <= 6 && value.find_first_not_of("0123456789") == std::string_view::npos;
    const long n = digits ? std::stol(std::string(value)) : -1;
    if (n < 0 || n > kMaxWaitSeconds)
      return {std::nullopt, fmt::format("Prefer: wait must be a whole number of seconds from 0 to {}, got \"{}\"",
                                        kMaxWaitSeconds, value.substr(0, 100))};
    return {n, ""};
  }
  return {};
}

}  // namespace sm::api
