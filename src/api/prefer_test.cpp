#include "api/prefer.h"

#include <doctest/doctest.h>

using sm::api::parse_prefer_wait;

TEST_CASE("Prefer: wait=N is read from anywhere in the list, in any case, quoted or not") {
  CHECK(!parse_prefer_wait("").seconds);
  CHECK(parse_prefer_wait("").error.empty());
  CHECK(parse_prefer_wait("wait=30").seconds == 30);
  CHECK(parse_prefer_wait("WAIT=0").seconds == 0);
  CHECK(parse_prefer_wait("respond-async, wait=5").seconds == 5);
  CHECK(parse_prefer_wait("  wait =  7 ,handling=lenient").seconds == 7);
  CHECK(parse_prefer_wait("wait=\"12\"").seconds == 12);
  CHECK(parse_prefer_wait("wait=86400").seconds == 86400);
  CHECK(parse_prefer_wait("wait=1, wait=2").seconds == 1);  // the first one counts
}

TEST_CASE("Prefer: other preferences and items without a value are not a wait") {
  const auto p = parse_prefer_wait("respond-async, handling=strict, wait, waiting=3");
  CHECK(!p.seconds);
  CHECK(p.error.empty());
}

TEST_CASE("Prefer: a malformed wait is an error that quotes the value") {
  for (const char* bad : {"wait=", "wait=-1", "wait=86401", "wait=1.5", "wait=abc", "wait=9999999", "wait=\"\"",
                          "wait=\"", "wait=1 2"}) {
    CAPTURE(bad);
    const auto p = parse_prefer_wait(bad);
    CHECK(!p.seconds);
    CHECK(p.error.find("Prefer: wait must be a whole number of seconds from 0 to 86400") == 0);
  }
  CHECK(parse_prefer_wait("wait=abc").error.find("got \"abc\"") != std::string::npos);
  CHECK(parse_prefer_wait("wait=" + std::string(1000, '9')).error.size() < 200);  // not echoed whole
}
