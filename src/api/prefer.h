#pragma once
// The `Prefer` request header (RFC 7240) as the API reads it: only `wait=N` matters (how
// long a call may wait for a running operation, contract §5). Pure, so unit-tested and
// fuzzed (fuzz/prefer_fuzz.cpp).

#include <optional>
#include <string>
#include <string_view>

namespace sm::api {

/// The largest wait a caller may ask for: a day.
inline constexpr long kMaxWaitSeconds = 86400;

struct PreferWait {
  std::optional<long> seconds;  // wait=N, 0..kMaxWaitSeconds; none when absent
  std::string error;            // non-empty: the header is malformed (a 400 says this)
};

/// Reads the first `wait` preference of a comma-separated `Prefer` header: the name is
/// case-insensitive, blanks around items and the value are ignored, the value may be
/// quoted. Other preferences, and items without `=`, are skipped.
PreferWait parse_prefer_wait(std::string_view header);

}  // namespace sm::api
