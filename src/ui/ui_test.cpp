#include <doctest/doctest.h>

#include "ui/sessions.h"
#include "ui/sse.h"

using namespace sm::ui;
using namespace std::chrono_literals;

TEST_CASE("sessions: a login is found by its id until it expires or is removed; ids and tokens are random") {
  Sessions s(60s, 3);
  const auto t0 = Sessions::Clock::now();
  const auto a = s.create(t0);
  CHECK(a.id.size() == 64);
  CHECK(a.csrf.size() == 64);
  CHECK(a.id != a.csrf);
  CHECK(s.csrf_of(a.id, t0 + 59s) == a.csrf);
  CHECK_FALSE(s.csrf_of(a.id, t0 + 60s));  // expired, and gone
  CHECK_FALSE(s.csrf_of(a.id, t0));
  const auto b = s.create(t0);
  CHECK(b.id != a.id);
  s.remove(b.id);
  CHECK_FALSE(s.csrf_of(b.id, t0));
  CHECK_FALSE(s.csrf_of("", t0));
  CHECK_FALSE(s.csrf_of(std::string(64, '0'), t0));
}

TEST_CASE("sessions: past the limit the oldest login goes") {
  Sessions s(60s, 2);
  const auto t0 = Sessions::Clock::now();
  const auto a = s.create(t0), b = s.create(t0 + 1s), c = s.create(t0 + 2s);
  CHECK_FALSE(s.csrf_of(a.id, t0 + 3s));
  CHECK(s.csrf_of(b.id, t0 + 3s));
  CHECK(s.csrf_of(c.id, t0 + 3s));
}

TEST_CASE("cookie_value and same_origin") {
  CHECK(cookie_value("a=1; sm_session=abc; b=2", "sm_session") == "abc");
  CHECK(cookie_value("sm_session=abc", "sm_session") == "abc");
  CHECK(cookie_value("xsm_session=abc; sm_sessionx=d", "sm_session") == "");
  CHECK(cookie_value("", "sm_session") == "");
  CHECK(same_origin("", "127.0.0.1:9100", "http"));
  CHECK(same_origin("http://127.0.0.1:9100", "127.0.0.1:9100", "http"));
  CHECK_FALSE(same_origin("https://127.0.0.1:9100", "127.0.0.1:9100", "http"));
  CHECK_FALSE(same_origin("http://evil.example", "127.0.0.1:9100", "http"));
  CHECK_FALSE(same_origin("null", "127.0.0.1:9100", "http"));
}

TEST_CASE("sse: events framed line by line; a log's partial last line waits for its newline") {
  CHECK(sse_event("stage", "{\"a\":1}") == "event: stage\ndata: {\"a\":1}\n\n");
  CHECK(sse_event("", "one\r\ntwo") == "data: one\ndata: two\n\n");
  SseLines lines;
  CHECK(lines.feed("first\nsec") == "event: line\ndata: first\n\n");
  CHECK(lines.feed("ond\n\n") == "event: line\ndata: second\n\nevent: line\ndata: \n\n");
  CHECK(lines.feed("") == "");
}
