#include "app/crash_restart.h"

#include <doctest/doctest.h>

using sm::app::Backoff;
using namespace std::chrono;

TEST_CASE("crash restart backoff: 1, 2, 4 ... 60 s; back to 1 s after 60 s running") {
  Backoff b;
  auto t = Backoff::Clock::time_point{} + hours(1);
  std::vector<long> waits;
  for (int i = 0; i < 9; ++i) {
    const auto w = b.next(t);
    waits.push_back(w.count());
    t += w;
    b.restarted(t);
    t += milliseconds(500);  // crashes half a second after each restart
  }
  CHECK(waits == std::vector<long>{1, 2, 4, 8, 16, 32, 60, 60, 60});
  t += seconds(60);  // ran for a minute
  CHECK(b.next(t) == seconds(1));
}
