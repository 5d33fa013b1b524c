#include "cron/schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>
#include <vector>

namespace sm::cron {
namespace {
using std::chrono::seconds;
using Time = Schedule::Time;

struct Field {
  const char* name;
  int min, max;
  const char* const* names;  // names[0] is the value `min`, or nullptr
};
constexpr const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                   "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
constexpr Field kFields[] = {{"minute", 0, 59, nullptr},
                             {"hour", 0, 23, nullptr},
                             {"day-of-month", 1, 31, nullptr},
                             {"month", 1, 12, kMonths},
                             {"day-of-week", 0, 7, kDays}};  // 7 is Sunday too

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (size_t at = 0;;) {
    const size_t end = s.find(sep, at);
    out.push_back(s.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at));
    if (end == std::string_view::npos) return out;
    at = end + 1;
  }
}

[[noreturn]] void fail(const Field& f, std::string_view text, const std::string& why) {
  throw ScheduleError(fmt::format("{} field \"{}\": {}", f.name, text, why));
}

int value(const Field& f, std::string_view field_text, std::string_view v) {
  if (v.empty()) fail(f, field_text, "a number is missing");
  if (f.names) {
    const std::string l = lower(v);
    for (int i = 0; i <= f.max - f.min && i < (f.names == kMonths ? 12 : 7); ++i)
      if (l == f.names[i]) return f.min + i;
  }
  if (v.size() > 4 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    fail(f, field_text,
         fmt::format("\"{}\" is not a number{}", v,
                     f.names ? fmt::format(" or a name ({}…)", f.names == kMonths ? "jan, feb" : "sun, mon")
                             : ""));
  const int n = std::stoi(std::string(v));
  if (n < f.min || n > f.max) fail(f, field_text, fmt::format("{} is out of range {}-{}", n, f.min, f.max));
  return n;
}

/// The values `text` names, as bits (bit i is value i); `star` is whether it starts with '*'.
std::bitset<60> parse_field(const Field& f, std::string_view text, bool& star) {
  std::bitset<60> bits;
  star = text.starts_with('*');
  if (text.empty()) fail(f, text, "empty");
  for (std::string_view item : split(text, ',')) {
    if (item.empty()) fail(f, text, "an empty list entry (two commas, or one at an end)");
    int step = 1;
    std::string_view range = item;
    if (const size_t slash = item.find('/'); slash != std::string_view::npos) {
      const std::string_view s = item.substr(slash + 1);
      if (s.empty() || s.size() > 4 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        fail(f, text, fmt::format("step \"{}\" is not a number", s));
      step = std::stoi(std::string(s));
      if (step < 1) fail(f, text, "a step must be at least 1");
      range = item.substr(0, slash);
    }
    int lo, hi;
    if (range == "*") {
      lo = f.min;
      hi = f.max == 7 ? 6 : f.max;
    } else if (const size_t dash = range.find('-'); dash != std::string_view::npos) {
      lo = value(f, text, range.substr(0, dash));
      hi = value(f, text, range.substr(dash + 1));
      if (lo > hi) fail(f, text, fmt::format("range {}-{} goes backwards", lo, hi));
    } else {
      lo = value(f, text, range);
      hi = item.find('/') == std::string_view::npos ? lo : (f.max == 7 ? 6 : f.max);  // "5/15": 5 to the end
    }
    for (int v = lo; v <= hi; v += step) bits.set(f.max == 7 && v == 7 ? 0 : v);
  }
  return bits;
}

template <size_t N>
std::bitset<N> narrow(const std::bitset<60>& b) {
  std::bitset<N> out;
  for (size_t i = 0; i < N; ++i) out[i] = b[i];
  return out;
}

seconds parse_every(std::string_view text, std::string_view all) {
  if (text.empty()) throw ScheduleError(fmt::format("\"{}\": @every needs an interval, e.g. \"@every 90s\"", all));
  long long total = 0;
  size_t at = 0;
  while (at < text.size()) {
    size_t digits = at;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    if (digits == at || digits == text.size() || digits - at > 7)
      throw ScheduleError(fmt::format("\"{}\": the interval must be numbers with units s, m, h or d, "
                                      "e.g. \"90s\", \"5m\", \"1h30m\"",
                                      all));
    const long long n = std::stoll(std::string(text.substr(at, digits - at)));
    const char unit = text[digits];
    const long long mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 0;
    if (!mult)
      throw ScheduleError(fmt::format("\"{}\": unknown unit '{}' (use s, m, h or d)", all, unit));
    total += n * mult;
    at = digits + 1;
  }
  if (total < 1 || total > 366 * 86400LL)
    throw ScheduleError(fmt::format("\"{}\": the interval must be 1s to 366d", all));
  return seconds(total);
}

// --- wall-clock (civil) minutes in the local time zone -----------------------------------
struct Civil {
  int y, mon, d, h, mi;  // mon 1-12
  auto operator<=>(const Civil&) const = default;
};

int days_in(int y, int mon) {
  static constexpr int kDaysIn[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return mon == 2 && leap ? 29 : kDaysIn[mon - 1];
}

std::chrono::sys_days date_of(const Civil& c) {
  return std::chrono::year_month_day{std::chrono::year(c.y), std::chrono::month(static_cast<unsigned>(c.mon)),
                                     std::chrono::day(static_cast<unsigned>(c.d))};
}

/// The civil time as if it were UTC: the zone's offset is subtracted from this.
long long naive_seconds(const Civil& c) {
  return std::chrono::duration_cast<seconds>(date_of(c).time_since_epoch()).count() + c.h * 3600LL + c.mi * 60LL;
}

struct Local {
  Civil civil;
  long offset;  // seconds east of UTC
};
Local local_at(long long t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  return {{tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min}, tm.tm_gmtoff};
}

/// The instant wall-clock minute `c` begins: the earlier one when it happens twice; when
/// it never happens (a skipped hour), the instant the clock jumped over it.
long long resolve(const Civil& c) {
  const long long naive = naive_seconds(c);
  const long before = local_at(naive - 86400).offset, after = local_at(naive + 86400).offset;
  std::optional<long long> best;
  for (const long off : {before, after}) {
    const long long t = naive - off;
    if (local_at(t).civil == c && (!best || t < *best)) best = t;
  }
  if (best) return *best;
  // A gap: the change lies between the two readings; find its first second.
  long long lo = naive - std::max(before, after), hi = naive - std::min(before, after);
  const long off_lo = local_at(lo).offset;
  while (hi - lo > 1) {
    const long long mid = lo + (hi - lo) / 2;
    (local_at(mid).offset == off_lo ? lo : hi) = mid;
  }
  return hi;
}

bool day_matches(const Schedule& s, const Civil& c) {
  const bool dom = s.days[static_cast<size_t>(c.d)];
  const bool dow = s.weekdays[std::chrono::weekday(date_of(c)).c_encoding()];
  if (s.any_day && s.any_weekday) return true;
  if (s.any_day) return dow;
  if (s.any_weekday) return dom;
  return dom || dow;
}

/// The first civil minute at or after `c` the fields name, before year `limit`.
std::optional<Civil> next_match(const Schedule& s, Civil c, int limit) {
  auto next_month = [&] {
    c.d = 1, c.h = 0, c.mi = 0;
    if (++c.mon > 12) c.mon = 1, ++c.y;
  };
  auto next_day = [&] {
    c.h = 0, c.mi = 0;
    if (++c.d > days_in(c.y, c.mon)) next_month();
  };
  auto next_hour = [&] {
    c.mi = 0;
    if (++c.h > 23) next_day();
  };
  while (c.y < limit) {
    if (!s.months[static_cast<size_t>(c.mon)]) {
      next_month();
    } else if (!day_matches(s, c)) {
      next_day();
    } else if (!s.hours[static_cast<size_t>(c.h)]) {
      next_hour();
    } else if (!s.minutes[static_cast<size_t>(c.mi)]) {
      if (++c.mi > 59) next_hour();
    } else {
      return c;
    }
  }
  return std::nullopt;
}

Civil plus_minute(Civil c) {
  if (++c.mi > 59) {
    c.mi = 0;
    if (++c.h > 23) {
      c.h = 0;
      if (++c.d > days_in(c.y, c.mon)) {
        c.d = 1;
        if (++c.mon > 12) c.mon = 1, ++c.y;
      }
    }
  }
  return c;
}

}  // namespace

std::optional<Time> Schedule::next(Time after) const {
  if (every.count() > 0) return after + every;
  const long long from = std::chrono::duration_cast<seconds>(after.time_since_epoch()).count();
  Civil c = plus_minute(local_at(from).civil);
  const int limit = c.y + 8;  // 29 February on a Monday is 5 or 6 years apart at most
  for (int guard = 0; guard < 100000; ++guard) {
    const auto match = next_match(*this, c, limit);
    if (!match) return std::nullopt;
    // A repeated hour's second pass maps back to instants already past: skipped.
    if (const long long t = resolve(*match); t > from) return Time(seconds(t));
    c = plus_minute(*match);
  }
  return std::nullopt;
}

Schedule parse(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (text.empty()) throw ScheduleError("empty; use five fields such as \"*/5 * * * *\", or @hourly, @daily");
  if (text.size() > 200) throw ScheduleError(fmt::format("{} characters; a schedule is at most 200", text.size()));
  std::string_view fields_text = text;
  if (text.starts_with('@')) {
    const size_t space = text.find_first_of(" \t");
    const std::string macro = lower(text.substr(0, space));
    std::string_view rest = space == std::string_view::npos ? std::string_view() : text.substr(space);
    while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front()))) rest.remove_prefix(1);
    if (macro == "@every") {
      Schedule s;
      s.every = parse_every(rest, text);
      return s;
    }
    static const std::array<std::pair<const char*, const char*>, 7> kMacros = {{{"@hourly", "0 * * * *"},
                                                                                {"@daily", "0 0 * * *"},
                                                                                {"@midnight", "0 0 * * *"},
                                                                                {"@weekly", "0 0 * * 0"},
                                                                                {"@monthly", "0 0 1 * *"},
                                                                                {"@yearly", "0 0 1 1 *"},
                                                                                {"@annually", "0 0 1 1 *"}}};
    const auto it = std::find_if(kMacros.begin(), kMacros.end(), [&](const auto& m) { return macro == m.first; });
    if (it == kMacros.end())
      throw ScheduleError(fmt::format("unknown \"{}\"; use @hourly, @daily, @weekly, @monthly, @yearly or "
                                      "@every INTERVAL",
                                      macro));
    if (!rest.empty()) throw ScheduleError(fmt::format("\"{}\": {} takes nothing after it", text, macro));
    fields_text = it->second;
  }
  std::vector<std::string_view> parts;
  for (size_t at = 0; at < fields_text.size();) {
    const size_t start = fields_text.find_first_not_of(" \t", at);
    if (start == std::string_view::npos) break;
    const size_t end = fields_text.find_first_of(" \t", start);
    parts.push_back(fields_text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    at = end == std::string_view::npos ? fields_text.size() : end;
  }
  if (parts.size() != 5)
    throw ScheduleError(fmt::format(
        "\"{}\" has {} field{}; cron has 5: minute hour day-of-month month day-of-week{}", text, parts.size(),
        parts.size() == 1 ? "" : "s", parts.size() == 6 ? " (seconds are not supported; use \"@every 30s\")" : ""));
  Schedule s;
  bool star = false;
  s.minutes = narrow<60>(parse_field(kFields[0], parts[0], star));
  s.hours = narrow<24>(parse_field(kFields[1], parts[1], star));
  s.days = narrow<32>(parse_field(kFields[2], parts[2], s.any_day));
  s.months = narrow<13>(parse_field(kFields[3], parts[3], star));
  s.weekdays = narrow<7>(parse_field(kFields[4], parts[4], s.any_weekday));
  if (!s.any_day && s.any_weekday) {  // a day that no chosen month has never comes
    bool some = false;
    for (int m = 1; m <= 12 && !some; ++m)
      for (int d = 1; d <= days_in(2000, m) && !some; ++d) some = s.months[static_cast<size_t>(m)] && s.days[static_cast<size_t>(d)];
    if (!some) throw ScheduleError(fmt::format("\"{}\" never runs: no chosen month has that day", text));
  }
  return s;
}

}  // namespace sm::cron
