// Cron schedules: any bytes give a schedule whose next run is later, or a ScheduleError.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cron/schedule.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool zone = [] {  // with daylight saving, so its gaps and repeats are walked
    setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    return true;
  }();
  (void)zone;
  try {
    const auto s = sm::cron::parse(std::string_view(reinterpret_cast<const char*>(data), size));
    const sm::cron::Schedule::Time from{std::chrono::seconds(1774740000)};  // 2026-03-28, before a change
    auto t = from;
    for (int i = 0; i < 5; ++i) {
      const auto n = s.next(t);
      if (!n) break;
      if (*n <= t) std::abort();  // never the same time twice, never backwards
      t = *n;
    }
  } catch (const sm::cron::ScheduleError&) {
  }
  return 0;
}
