#include "edge/api_token.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>

#include "config/config.h"
#include "test_support.h"

using namespace sm::edge;

TEST_CASE("equal_constant_time: equal strings only") {
  CHECK(equal_constant_time("abc", "abc"));
  CHECK_FALSE(equal_constant_time("abc", "abd"));
  CHECK_FALSE(equal_constant_time("abc", "abcd"));
  CHECK_FALSE(equal_constant_time("", "x"));
}

TEST_CASE("bearer_matches: only \"Bearer <the token>\", exactly") {
  const std::string t = "0123456789abcdef0123";
  CHECK(bearer_matches("Bearer 0123456789abcdef0123", t));
  CHECK_FALSE(bearer_matches("Bearer 0123456789abcdef012", t));
  CHECK_FALSE(bearer_matches("Bearer 0123456789abcdef01234", t));
  CHECK_FALSE(bearer_matches("bearer 0123456789abcdef0123", t));
  CHECK_FALSE(bearer_matches("0123456789abcdef0123", t));
  CHECK_FALSE(bearer_matches("Bearer ", t));
  CHECK_FALSE(bearer_matches("", t));
  CHECK_FALSE(bearer_matches("Basic dXNlcjpwYXNz", t));
}

TEST_CASE("tokens: too short, too long, spaces and control characters are refused with the source") {
  CHECK_NOTHROW(check_token(std::string(16, 'a'), "x"));
  CHECK_THROWS_WITH_AS(check_token("short", "$SLOT_MACHINE_API_TOKEN"),
                       doctest::Contains("$SLOT_MACHINE_API_TOKEN is 5 characters"), sm::config::ConfigError);
  CHECK_THROWS_AS(check_token(std::string(4097, 'a'), "x"), sm::config::ConfigError);
  CHECK_THROWS_WITH_AS(check_token("0123456789 abcdef", "f"), doctest::Contains("visible ASCII"),
                       sm::config::ConfigError);
  CHECK_THROWS_AS(check_token(std::string("0123456789abcdef\x01"), "f"), sm::config::ConfigError);
}

TEST_CASE("token files: first line trimmed; a missing file is named") {
  sm::test::TempDir dir;
  const auto f = dir.path / "token";
  std::ofstream(f) << "  0123456789abcdef0123  \nsecond line ignored\n";
  CHECK(read_token_file(f) == "0123456789abcdef0123");
  CHECK_THROWS_WITH_AS(read_token_file(dir.path / "nope"), doctest::Contains((dir.path / "nope").c_str()),
                       sm::config::ConfigError);
  std::ofstream(f, std::ios::trunc) << "\n";
  CHECK_THROWS_AS(read_token_file(f), sm::config::ConfigError);
}

TEST_CASE("find_token: the environment beats the file; neither is none") {
  sm::test::TempDir dir;
  const auto f = dir.path / "token";
  std::ofstream(f) << "fromthefile-0123456789\n";
  unsetenv(kTokenVar);
  CHECK(find_token({}) == std::nullopt);
  CHECK(find_token(f) == "fromthefile-0123456789");
  setenv(kTokenVar, "fromtheenv-0123456789", 1);
  CHECK(find_token(f) == "fromtheenv-0123456789");
  setenv(kTokenVar, "", 1);
  CHECK(find_token(f) == "fromthefile-0123456789");
  unsetenv(kTokenVar);
}

TEST_CASE("loopback addresses") {
  CHECK(is_loopback("127.0.0.1"));
  CHECK(is_loopback("127.1.2.3"));
  CHECK(is_loopback("::1"));
  CHECK(is_loopback("localhost"));
  CHECK_FALSE(is_loopback("0.0.0.0"));
  CHECK_FALSE(is_loopback("10.0.0.1"));
  CHECK_FALSE(is_loopback("::"));
  CHECK_FALSE(is_loopback("example.com"));
}
