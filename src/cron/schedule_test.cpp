#include "cron/schedule.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdlib>
#include <ctime>

using sm::cron::parse;
using sm::cron::Schedule;

namespace {

/// Runs the test in Central European time (DST from the last Sunday of March 02:00 to the
/// last Sunday of October 03:00), as a POSIX TZ string: no tzdata needed.
struct InZone {
  explicit InZone(const char* tz) {
    if (const char* old = std::getenv("TZ")) saved = old, had = true;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~InZone() {
    if (had)
      setenv("TZ", saved.c_str(), 1);
    else
      unsetenv("TZ");
    tzset();
  }
  std::string saved;
  bool had = false;
};
constexpr const char* kCet = "CET-1CEST,M3.5.0,M10.5.0/3";

Schedule::Time utc(int y, int mon, int d, int h, int mi) {
  std::tm tm{};
  tm.tm_year = y - 1900, tm.tm_mon = mon - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi;
  return Schedule::Time(std::chrono::seconds(timegm(&tm)));
}

/// "2026-03-29 03:00 +0200": the local time and its offset.
std::string local(std::optional<Schedule::Time> t) {
  if (!t) return "never";
  const std::time_t tt = std::chrono::system_clock::to_time_t(*t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M %z", &tm);
  return buf;
}

std::string error_of(const char* text) {
  try {
    parse(text);
  } catch (const sm::cron::ScheduleError& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("cron: next runs of a table of expressions") {
  InZone zone(kCet);
  const auto from = utc(2026, 12, 4, 9, 7);  // Friday 2026-12-04 10:07 CET
  struct Row {
    const char* schedule;
    const char* next;
  } rows[] = {
      {"* * * * *", "2026-12-04 10:08 +0100"},
      {"*/15 * * * *", "2026-12-04 10:15 +0100"},
      {"0 * * * *", "2026-12-04 11:00 +0100"},
      {"@hourly", "2026-12-04 11:00 +0100"},
      {"@daily", "2026-12-05 00:00 +0100"},
      {"@midnight", "2026-12-05 00:00 +0100"},
      {"@weekly", "2026-12-06 00:00 +0100"},
      {"@monthly", "2027-01-01 00:00 +0100"},
      {"@yearly", "2027-01-01 00:00 +0100"},
      {"0 9 * * mon-fri", "2026-12-07 09:00 +0100"},
      {"0 9 * * MON-FRI", "2026-12-07 09:00 +0100"},
      {"30 10 * * 5", "2026-12-04 10:30 +0100"},
      {"0 0 * * 7", "2026-12-06 00:00 +0100"},  // 7 is Sunday, as 0
      {"0 0 * * sun", "2026-12-06 00:00 +0100"},
      {"5,10,50 10 * * *", "2026-12-04 10:10 +0100"},
      {"10-20/5 * * * *", "2026-12-04 10:10 +0100"},
      {"50/5 * * * *", "2026-12-04 10:50 +0100"},  // 50, 55
      {"0 0 1 jan *", "2027-01-01 00:00 +0100"},
      {"0 12 1 6 *", "2027-06-01 12:00 +0200"},
      {"0 0 29 2 *", "2028-02-29 00:00 +0100"},
      {"0 0 31 * *", "2026-12-31 00:00 +0100"},
      // Both day fields restricted: either matches (the 13th, or a Friday).
      {"0 0 13 * fri", "2026-12-11 00:00 +0100"},
      // One restricted: only it counts.
      {"0 0 13 * *", "2026-12-13 00:00 +0100"},
      {"0 0 * * fri", "2026-12-11 00:00 +0100"},
      {"  0   0   *   *   fri  ", "2026-12-11 00:00 +0100"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.schedule);
    CHECK(local(parse(r.schedule).next(from)) == r.next);
  }
}

TEST_CASE("cron: @every counts from the last run, whatever the wall clock") {
  const auto from = utc(2026, 3, 29, 0, 59);
  CHECK(parse("@every 90s").next(from) == from + std::chrono::seconds(90));
  CHECK(parse("@every 1h30m").next(from) == from + std::chrono::minutes(90));
  CHECK(parse("@every 2d").next(from) == from + std::chrono::hours(48));
  CHECK(parse("@EVERY 5m").next(from) == from + std::chrono::minutes(5));
}

TEST_CASE("cron: a skipped hour runs once at the change, a repeated hour once") {
  InZone zone(kCet);
  // 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC). 02:30 never happens.
  CHECK(local(parse("30 2 * * *").next(utc(2026, 3, 29, 0, 0))) == "2026-03-29 03:00 +0200");
  CHECK(local(parse("30 2 * * *").next(utc(2026, 3, 29, 1, 0))) == "2026-03-30 02:30 +0200");
  // Every ten minutes: 02:00…02:50 are one run at 03:00, then 03:10.
  CHECK(local(parse("*/10 * * * *").next(utc(2026, 3, 29, 0, 55))) == "2026-03-29 03:00 +0200");
  CHECK(local(parse("*/10 * * * *").next(utc(2026, 3, 29, 1, 0))) == "2026-03-29 03:10 +0200");
  // 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:00-02:59 happens twice.
  CHECK(local(parse("30 2 * * *").next(utc(2026, 10, 25, 0, 0))) == "2026-10-25 02:30 +0200");
  CHECK(local(parse("30 2 * * *").next(utc(2026, 10, 25, 0, 30))) == "2026-10-26 02:30 +0100");
  // During the second pass nothing of the first runs again; 03:00 comes once.
  CHECK(local(parse("*/10 * * * *").next(utc(2026, 10, 25, 1, 5))) == "2026-10-25 03:00 +0100");
  CHECK(local(parse("0 * * * *").next(utc(2026, 10, 25, 0, 0))) == "2026-10-25 03:00 +0100");
}

TEST_CASE("cron: bad schedules say which field and why") {
  CHECK(error_of("61 * * * *") == "minute field \"61\": 61 is out of range 0-59");
  CHECK(error_of("* 24 * * *") == "hour field \"24\": 24 is out of range 0-23");
  CHECK(error_of("* * 0 * *") == "day-of-month field \"0\": 0 is out of range 1-31");
  CHECK(error_of("* * * 13 *") == "month field \"13\": 13 is out of range 1-12");
  CHECK(error_of("* * * * 8") == "day-of-week field \"8\": 8 is out of range 0-7");
  CHECK(error_of("0 * * * * *") ==
        "\"0 * * * * *\" has 6 fields; cron has 5: minute hour day-of-month month day-of-week (seconds are not "
        "supported; use \"@every 30s\")");
  CHECK(error_of("* * * *") == "\"* * * *\" has 4 fields; cron has 5: minute hour day-of-month month day-of-week");
  CHECK(error_of("") == "empty; use five fields such as \"*/5 * * * *\", or @hourly, @daily");
  CHECK(error_of("*/0 * * * *") == "minute field \"*/0\": a step must be at least 1");
  CHECK(error_of("*/x * * * *") == "minute field \"*/x\": step \"x\" is not a number");
  CHECK(error_of("5-1 * * * *") == "minute field \"5-1\": range 5-1 goes backwards");
  CHECK(error_of("1,,2 * * * *") == "minute field \"1,,2\": an empty list entry (two commas, or one at an end)");
  CHECK(error_of("x * * * *") == "minute field \"x\": \"x\" is not a number");
  CHECK(error_of("* * * foo *") == "month field \"foo\": \"foo\" is not a number or a name (jan, feb…)");
  CHECK(error_of("-1 * * * *") == "minute field \"-1\": a number is missing");
  CHECK(error_of("0 0 30 2 *") == "\"0 0 30 2 *\" never runs: no chosen month has that day");
  CHECK(error_of("@reboot") ==
        "unknown \"@reboot\"; use @hourly, @daily, @weekly, @monthly, @yearly or @every INTERVAL");
  CHECK(error_of("@daily 5") == "\"@daily 5\": @daily takes nothing after it");
  CHECK(error_of("@every") == "\"@every\": @every needs an interval, e.g. \"@every 90s\"");
  CHECK(error_of("@every 0s") == "\"@every 0s\": the interval must be 1s to 366d");
  CHECK(error_of("@every 5") ==
        "\"@every 5\": the interval must be numbers with units s, m, h or d, e.g. \"90s\", \"5m\", \"1h30m\"");
  CHECK(error_of("@every 5w") == "\"@every 5w\": unknown unit 'w' (use s, m, h or d)");
  CHECK(error_of(std::string(201, '*').c_str()) == "201 characters; a schedule is at most 200");
  // Accepted: 30 February with a weekday runs on that weekday (either field matches).
  CHECK(error_of("0 0 30 2 mon") == "(accepted)");
}
