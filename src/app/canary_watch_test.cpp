#include "app/canary_watch.h"

#include <doctest/doctest.h>

#include "proxy/proxy.h"

using namespace sm::app;

namespace {
Event probe(bool healthy, const char* commit = "c2") {
  return {EventKind::CanaryProbe, 0,
          {{"slot", "b"}, {"commit", commit}, {"healthy", healthy}, {"exited", false}, {"detail", "HTTP 503"}}};
}
Event exited(const char* commit = "c2") {
  return {EventKind::CanaryProbe, 0,
          {{"slot", "b"}, {"commit", commit}, {"healthy", false}, {"exited", true}, {"detail", "was killed by SIGKILL"}}};
}
}  // namespace

TEST_CASE("canary watch: three failed probes in a row end a canary, once; a healthy one starts the count again") {
  CanaryWatch w;
  CHECK_FALSE(w.on(probe(false)));
  CHECK_FALSE(w.on(probe(false)));
  CHECK_FALSE(w.on(probe(true)));
  CHECK_FALSE(w.on(probe(false)));
  CHECK_FALSE(w.on(probe(false)));
  auto v = w.on(probe(false));
  REQUIRE(v);
  CHECK(v->commit == "c2");
  CHECK(v->reason == "the canary failed 3 health probes in a row (HTTP 503)");
  CHECK_FALSE(w.on(probe(false)));  // told once
  CHECK_FALSE(w.on(exited()));
  // Another canary counts afresh.
  CHECK_FALSE(w.on(probe(false, "c3")));
  v = w.on(exited("c3"));
  REQUIRE(v);
  CHECK(v->reason == "the canary stopped: was killed by SIGKILL");
  // The same commit canaried again after a new canary began.
  CHECK_FALSE(w.on({EventKind::Finished, 1, {{"action", "canary"}, {"result", "ok"}, {"commit", "c3"}}}));
  CHECK(w.on(exited("c3")));
  // Other events are not its business.
  CHECK_FALSE(w.on({EventKind::LiveProbe, 0, {{"commit", "c4"}, {"healthy", false}}}));
}

TEST_CASE("canary cookie: the side a Cookie header names; none, or a forged value, is drawn afresh") {
  using sm::proxy::canary_side;
  CHECK(canary_side("slot-machine-canary=new") == true);
  CHECK(canary_side("slot-machine-canary=old") == false);
  CHECK(canary_side("theme=dark; slot-machine-canary=new; lang=en") == true);
  CHECK(canary_side("theme=dark;slot-machine-canary=old") == false);
  CHECK(canary_side("slot-machine-canary=\"new\"") == true);
  CHECK(canary_side("  slot-machine-canary=old  ") == false);
  CHECK_FALSE(canary_side(""));
  CHECK_FALSE(canary_side("theme=dark"));
  CHECK_FALSE(canary_side("slot-machine-canary=admin"));
  CHECK_FALSE(canary_side("slot-machine-canary="));
  CHECK_FALSE(canary_side("slot-machine-canary=NEW"));
  CHECK_FALSE(canary_side("x-slot-machine-canary=new"));
  CHECK_FALSE(canary_side("slot-machine-canary"));
  CHECK_FALSE(canary_side(";;;="));
  // The first of the name decides, as a browser sends the most specific first.
  CHECK(canary_side("slot-machine-canary=old; slot-machine-canary=new") == false);
}
