#include <doctest/doctest.h>

#include <stdexcept>

#include "cli/client.h"

using sm::cli::remote_url;

TEST_CASE("--remote URLs: normalised with the scheme's port; anything else is refused with why") {
  CHECK(remote_url("http://127.0.0.1:9100") == "http://127.0.0.1:9100");
  CHECK(remote_url("http://127.0.0.1:9100/") == "http://127.0.0.1:9100");
  CHECK(remote_url("https://deploy.example.com") == "https://deploy.example.com:443");
  CHECK(remote_url("http://web-1") == "http://web-1:80");
  CHECK(remote_url("https://[::1]:9443") == "https://[::1]:9443");
  CHECK(remote_url("http://host:0080") == "http://host:80");
  CHECK_THROWS_WITH_AS(remote_url("127.0.0.1:9100"), doctest::Contains("must start with http://"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(remote_url("ftp://host"), doctest::Contains("must start with"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(remote_url("http://host:9100/status"), doctest::Contains("no path"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(remote_url("http://user:pw@host"), doctest::Contains("no path, query or user"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(remote_url("http://host:70000"), doctest::Contains("1-65535"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(remote_url("http://host:abc"), doctest::Contains("1-65535"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(remote_url("http://host:0"), doctest::Contains("1-65535"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(remote_url("http://"), doctest::Contains("no host"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(remote_url("http://ho\"st"), doctest::Contains("cannot be in a host"), std::invalid_argument);
  CHECK_THROWS_AS(remote_url("https://[::1"), std::invalid_argument);
  CHECK_THROWS_AS(remote_url("https://[::1]x"), std::invalid_argument);
}
