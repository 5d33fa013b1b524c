#include <doctest/doctest.h>

#include "metrics/exporter.h"
#include "metrics/exposition.h"
#include "stats/histogram.h"

using namespace sm::metrics;
using sm::app::Event;
using sm::app::EventKind;

TEST_CASE("histogram: a value goes in the first bucket whose bound it does not exceed") {
  const double bounds[] = {0.1, 1, 10};
  Histogram h(bounds);
  h.observe(0.05);
  h.observe(0.1);  // le="0.1" holds 0.1 itself
  h.observe(0.5);
  h.observe(20);
  const auto s = h.snapshot();
  CHECK(s.bounds == std::vector<double>{0.1, 1, 10});
  CHECK(s.cumulative == std::vector<uint64_t>{2, 3, 3, 4});
  CHECK(s.count() == 4);
  CHECK(s.sum == doctest::Approx(20.65));
}

TEST_CASE("histogram: bounds must increase and fit") {
  const double down[] = {1, 0.5};
  CHECK_THROWS_AS(Histogram(std::span<const double>(down)), std::invalid_argument);
  const std::vector<double> many(17, 1.0);
  CHECK_THROWS_AS(Histogram(std::span<const double>(many)), std::invalid_argument);
}

TEST_CASE("exposition: families with HELP and TYPE, labels escaped, histogram buckets cumulative") {
  Exposition x;
  x.counter("a_total", "Things\\done.\nTwice", {{{{"k", "v\"1\\\n"}}, 3}, {{{"k", "w"}}, 0}});
  x.gauge("b", "A gauge.", {{{}, 0.25}});
  const double bounds[] = {0.5};
  Histogram h(bounds);
  h.observe(0.25);
  h.observe(2);
  x.histogram("c_seconds", "Durations.", h.snapshot());
  CHECK(x.text() ==
        "# HELP a_total Things\\\\done.\\nTwice\n"
        "# TYPE a_total counter\n"
        "a_total{k=\"v\\\"1\\\\\\n\"} 3\n"
        "a_total{k=\"w\"} 0\n"
        "# HELP b A gauge.\n"
        "# TYPE b gauge\n"
        "b 0.25\n"
        "# HELP c_seconds Durations.\n"
        "# TYPE c_seconds histogram\n"
        "c_seconds_bucket{le=\"0.5\"} 1\n"
        "c_seconds_bucket{le=\"+Inf\"} 2\n"
        "c_seconds_sum 2.25\n"
        "c_seconds_count 2\n");
}

TEST_CASE("operation counters: finished operations by action and result, deploy durations, restarts by reason") {
  OperationCounters c;
  auto finished = [](nlohmann::json fields) { return Event{EventKind::Finished, 1, std::move(fields)}; };
  c.count(finished({{"action", "deploy"}, {"result", "ok"}, {"duration_ms", 1500}}));
  c.count(finished({{"action", "deploy"}, {"result", "failed"}, {"duration_ms", 200}}));
  c.count(finished({{"action", "auto-rollback"}, {"result", "ok"}, {"duration_ms", 3}}));
  c.count(finished({{"action", "restart"}, {"result", "ok"}, {"reason", "crashed"}}));
  c.count(finished({{"action", "restart"}, {"result", "failed"}, {"reason", "crashed"}}));
  c.count(finished({{"action", "mystery"}, {"result", "ok"}}));   // ignored
  c.count(Event{EventKind::Stage, 1, {{"action", "deploy"}, {"result", "ok"}}});  // not Finished
  CHECK(c.finished("deploy", "ok") == 1);
  CHECK(c.finished("deploy", "failed") == 1);
  CHECK(c.finished("deploy", "cancelled") == 0);
  CHECK(c.finished("auto-rollback", "ok") == 1);
  CHECK(c.finished("rollback", "ok") == 0);
  CHECK(c.finished("mystery", "ok") == 0);
  CHECK(c.restarts("crashed") == 1);  // the failed one did not start it
  CHECK(c.restarts("requested") == 0);
  const auto d = c.deploy_durations();
  CHECK(d.count() == 2);
  CHECK(d.sum == doctest::Approx(1.7));
}
