#include "app/auto_rollback.h"

#include <doctest/doctest.h>

using namespace sm::app;
using namespace std::chrono_literals;

namespace {
const auto t0 = std::chrono::steady_clock::now();

Event finished(const char* action, const char* result, std::chrono::seconds at, const char* commit = "c2") {
  return {EventKind::Finished, 1, {{"action", action}, {"result", result}, {"slot", "b"}, {"commit", commit}}, t0 + at};
}
Event probe(bool healthy, std::chrono::seconds at, const char* commit = "c2") {
  return {EventKind::LiveProbe, 0, {{"slot", "b"}, {"commit", commit}, {"healthy", healthy}, {"detail", "HTTP 500"}}, t0 + at};
}
Event exited(std::chrono::seconds at) {
  return {EventKind::AppExited, 0, {{"slot", "b"}, {"commit", "c2"}, {"detail", "exited with status 1"}}, t0 + at};
}
}  // namespace

TEST_CASE("auto-rollback: an exit within the window after a deploy rolls back, once") {
  RollbackWatch w(30s);
  CHECK_FALSE(w.on(exited(1s)));  // nothing deployed: nothing armed
  CHECK_FALSE(w.on(finished("deploy", "ok", 2s)));
  CHECK(w.armed());
  auto v = w.on(exited(7s));
  REQUIRE(v);
  CHECK(v->slot == "b");
  CHECK(v->commit == "c2");
  CHECK(v->reason == "the app deployed 5 s ago exited with status 1 (auto_rollback_s=30)");
  CHECK_FALSE(w.armed());
  CHECK_FALSE(w.on(exited(8s)));  // no second verdict
}

TEST_CASE("auto-rollback: three failed probes in a row; a healthy one resets the count") {
  RollbackWatch w(30s);
  w.on(finished("deploy", "ok", 0s));
  CHECK_FALSE(w.on(probe(false, 1s)));
  CHECK_FALSE(w.on(probe(false, 2s)));
  CHECK_FALSE(w.on(probe(true, 3s)));
  CHECK_FALSE(w.on(probe(false, 4s)));
  CHECK_FALSE(w.on(probe(false, 5s)));
  CHECK_FALSE(w.on(probe(false, 5s, "other")));  // another version's probe counts for nothing
  auto v = w.on(probe(false, 6s));
  REQUIRE(v);
  CHECK(v->reason.find("failed 3 health probes in a row (HTTP 500)") != std::string::npos);
}

TEST_CASE("auto-rollback: nothing after the window, after a failed deploy, or after another operation") {
  RollbackWatch w(10s);
  w.on(finished("deploy", "ok", 0s));
  CHECK_FALSE(w.on(exited(11s)));
  CHECK_FALSE(w.armed());

  w.on(finished("deploy", "failed", 20s));
  CHECK_FALSE(w.on(exited(21s)));

  w.on(finished("deploy", "ok", 30s));
  w.on(finished("rollback", "ok", 31s, "c1"));  // a rollback (manual or automatic) ends it
  CHECK_FALSE(w.on(exited(32s)));

  w.on(finished("deploy", "ok", 40s));
  w.on(finished("deploy", "refused", 41s));  // refused operations change nothing
  CHECK(w.on(exited(42s)));
}
