#include "log/log.h"

#include <doctest/doctest.h>

using namespace sm::log;

TEST_CASE("rfc3339 and parse_rfc3339 round-trip; anything else is no time") {
  CHECK(rfc3339(0) == "1970-01-01T00:00:00Z");
  CHECK(rfc3339(1795464660) == "2026-11-23T20:11:00Z");
  CHECK(parse_rfc3339("2026-11-23T20:11:00Z") == std::optional<std::time_t>(1795464660));
  const std::time_t now = std::time(nullptr);
  CHECK(parse_rfc3339(rfc3339(now)) == std::optional<std::time_t>(now));
  for (const char* bad : {"", "yesterday", "2026-11-23T20:11:00", "2026-11-23T20:11:00Z trailing", "2026-11-23"})
    CHECK_MESSAGE(!parse_rfc3339(bad), bad);
  CHECK(seconds_since("garbage") == 0);
  CHECK(seconds_since(rfc3339(now + 100)) == 0);  // ahead
  CHECK(seconds_since(rfc3339(now - 100)) >= 100);
}
