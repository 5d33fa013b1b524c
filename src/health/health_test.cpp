#include "health/health.h"

#include <doctest/doctest.h>

#include <thread>

using namespace sm::health;

TEST_CASE("health: backoff starts at 1 ms and grows gently to 50 ms") {
  CHECK(backoff(1) == milliseconds(1));
  CHECK(backoff(2) == milliseconds(1));
  CHECK(backoff(5) == milliseconds(2));
  for (int i = 2; i < 60; ++i) CHECK(backoff(i) >= backoff(i - 1));
  CHECK(backoff(30) == milliseconds(50));
  CHECK(backoff(1000) == milliseconds(50));
}

TEST_CASE("health: the first probe is immediate and success stops the loop") {
  int probes = 0, pauses = 0;
  Watch w{[&] { return Probe{++probes == 3, "HTTP 503"}; },
          [] { return std::optional<int>(); },
          [&](Clock::time_point) { ++pauses; return true; }};
  auto r = wait_healthy(w, milliseconds(1000));
  CHECK(r.outcome == Outcome::Healthy);
  CHECK(r.attempts == 3);
  CHECK(pauses == 2);
}

TEST_CASE("health: a process exit ends the wait at once with its status") {
  int probes = 0;
  Watch w{[&] { ++probes; return Probe{false, "connection refused"}; },
          [&] { return probes >= 2 ? std::optional<int>(1 << 8) : std::nullopt; },
          [](Clock::time_point) { return true; }};
  auto r = wait_healthy(w, milliseconds(100000));
  CHECK(r.outcome == Outcome::ProcessExited);
  CHECK(describe(r) == "the app exited with status 1 before it became healthy");
}

TEST_CASE("health: timeout reports the last probe, cancellation is its own outcome") {
  Watch slow{[] { return Probe{false, "HTTP 503"}; },
             [] { return std::optional<int>(); },
             [](Clock::time_point t) { std::this_thread::sleep_until(t); return true; }};
  auto r = wait_healthy(slow, milliseconds(30));
  CHECK(r.outcome == Outcome::TimedOut);
  CHECK(describe(r).find("last probe: HTTP 503") != std::string::npos);

  Watch cancel{[] { return Probe{false, "x"}; }, [] { return std::optional<int>(); },
               [](Clock::time_point) { return false; }};
  CHECK(wait_healthy(cancel, milliseconds(1000)).outcome == Outcome::Cancelled);
}
