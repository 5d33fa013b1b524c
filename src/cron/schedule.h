#pragma once
// A cron job's schedule (contract §16): five fields (minute hour day-of-month month
// day-of-week) with lists, ranges, steps and names, or @hourly/@daily/@weekly/@monthly/
// @yearly, or "@every 90s". Pure: parse() and next() only; the app runs the jobs.

#include <bitset>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace sm::cron {

/// A schedule that cannot be used; what() names the field and the value, e.g.
/// `minute field "61": 61 is out of range 0-59`.
class ScheduleError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Schedule {
  using Time = std::chrono::system_clock::time_point;

  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;      // 1-31
  std::bitset<13> months;    // 1-12
  std::bitset<7> weekdays;   // 0 = Sunday
  // As cron: when both day fields are restricted, a day matching either runs.
  bool any_day = true, any_weekday = true;
  std::chrono::seconds every{0};  // "@every": a fixed interval instead of the fields

  /// The first time strictly after `after` that the schedule names, in the process's
  /// local time zone. Daylight saving as cron: times in a skipped hour run once at the
  /// change; a repeated hour runs once (its second pass is skipped). With `every`:
  /// after + every. Nothing when no date in the next 8 years matches.
  std::optional<Time> next(Time after) const;
};

/// Parses `text`; throws ScheduleError.
Schedule parse(std::string_view text);

}  // namespace sm::cron
