#include "app/events.h"

#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

using sm::app::Event;
using sm::app::EventKind;
using sm::app::Events;

TEST_CASE("listeners get every event in order, until their subscription ends") {
  Events hub;
  std::vector<std::string> seen;
  auto a = hub.subscribe([&](const Event& e) { seen.push_back("a:" + e.fields.value("stage", "")); });
  {
    auto b = hub.subscribe([&](const Event& e) { seen.push_back("b:" + e.fields.value("stage", "")); });
    hub.publish({EventKind::Stage, 1, {{"stage", "checkout"}}});
  }
  hub.publish({EventKind::Stage, 1, {{"stage", "setup"}}});
  a.reset();
  hub.publish({EventKind::Stage, 1, {{"stage", "start"}}});
  CHECK(seen == std::vector<std::string>{"a:checkout", "b:checkout", "a:setup"});
}

TEST_CASE("a listener that throws is dropped; the others go on") {
  Events hub;
  int calls = 0, good = 0;
  auto bad = hub.subscribe([&](const Event&) {
    ++calls;
    throw std::runtime_error("disk full");
  });
  auto ok = hub.subscribe([&](const Event&) { ++good; });
  hub.publish({EventKind::Output});
  hub.publish({EventKind::Output});
  CHECK(calls == 1);
  CHECK(good == 2);
}

TEST_CASE("a subscription moved keeps its listener; the moved-from one ends nothing") {
  Events hub;
  int n = 0;
  Events::Subscription kept;
  {
    auto s = hub.subscribe([&](const Event&) { ++n; });
    kept = std::move(s);
  }
  hub.publish({EventKind::Health});
  CHECK(n == 1);
}

TEST_CASE("no listener call is running or starts once reset() has returned") {
  Events hub;
  std::atomic<bool> live{true}, stop{false};
  std::atomic<int> after{0};
  auto s = hub.subscribe([&](const Event&) {
    if (!live) ++after;
  });
  std::thread publisher([&] {
    while (!stop) hub.publish({EventKind::Output});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  s.reset();
  live = false;
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  publisher.join();
  CHECK(after == 0);
}
