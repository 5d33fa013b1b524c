// Contract §11: GET /metrics. The Prometheus text that promtool accepts, with the
// daemon's operations (from its event stream) and the proxy's requests counted.

#include <doctest/doctest.h>

#include <thread>
#include <fmt/format.h>
#include <httplib.h>
#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <regex>

#include "harness.h"

using namespace spec;

namespace {

/// The value of the sample `series` (name and labels exactly as written) in a scrape,
/// or -1 when there is no such line.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  return -1;
}

/// `promtool check metrics` on `text`: its exit code and what it said.
RunResult promtool(const std::string& text, const fs::path& dir) {
  const fs::path file = dir / "scrape.txt";
  std::ofstream(file) << text;
  return run({"/bin/sh", "-c", "promtool check metrics < scrape.txt"}, dir);
}

httplib::Result scrape(int port, const std::string& token = "") {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  httplib::Headers h;
  if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
  return c.Get("/metrics", h);
}

}  // namespace

TEST_CASE("metrics: promtool accepts the scrape; deploys, rollbacks, their durations, health and the "
          "proxy's answers by class are counted") {
  Site site({{"v1"}, {"v2"}, {"v3", "--start-unhealthy"}}, json::object(), kProxyMode);
  AppRepo& repo = site.repo;
  Daemon& d = site.d;
  const std::string v1 = site.commits[0], v2 = site.commits[1], bad = site.commits[2];

  auto before = scrape(d.api_port());
  REQUIRE(before);
  CHECK(before->status == 200);
  CHECK(before->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  const auto checked_empty = promtool(before->body, repo.home());
  CHECK_MESSAGE(checked_empty.exit_code == 0, (checked_empty.out + checked_empty.err));
  CHECK(sample(before->body, "slot_machine_deploys_total{result=\"ok\"}") == 0);
  CHECK(sample(before->body, "slot_machine_live_healthy") == 0);
  CHECK(sample(before->body, "slot_machine_proxy_requests_total{code=\"2xx\"}") == 0);

  REQUIRE(d.deploy(v1).status == 200);
  CHECK(d.deploy(bad).status == 500);
  REQUIRE(d.deploy(v2).status == 200);
  CHECK(d.deploy("no-such-revision").status == 404);  // refused: nothing ran, nothing counted
  REQUIRE(d.rollback().status == 200);                 // back to v1
  for (int i = 0; i < 5; ++i) CHECK(http_get(d.public_port(), "/").status == 200);
  CHECK(http_get(d.public_port(), "/nothing-here").status == 404);
  // The proxy's own answer to a malformed request counts too.
  CHECK(raw_exchange(d.public_port(), "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n")
            .starts_with("HTTP/1.1 400"));

  // The proxy counts a request once its answer is written, which its client can see a
  // moment before: scrape until the last one is in (2 s at most).
  auto after = scrape(d.api_port());
  for (int i = 0; i < 100 && after && sample(after->body, "slot_machine_proxy_request_duration_seconds_count") < 7;
       ++i) {
    std::this_thread::sleep_for(20ms);
    after = scrape(d.api_port());
  }
  REQUIRE(after);
  const std::string& m = after->body;
  const auto checked = promtool(m, repo.home());
  CHECK_MESSAGE(checked.exit_code == 0, (checked.out + checked.err));
  CHECK(sample(m, "slot_machine_deploys_total{result=\"ok\"}") == 2);
  CHECK(sample(m, "slot_machine_deploys_total{result=\"failed\"}") == 1);
  CHECK(sample(m, "slot_machine_deploys_total{result=\"cancelled\"}") == 0);
  CHECK(sample(m, "slot_machine_rollbacks_total{result=\"ok\",trigger=\"manual\"}") == 1);
  CHECK(sample(m, "slot_machine_rollbacks_total{result=\"ok\",trigger=\"auto\"}") == 0);
  CHECK(sample(m, "slot_machine_deploy_duration_seconds_count") == 3);
  CHECK(sample(m, "slot_machine_deploy_duration_seconds_bucket{le=\"+Inf\"}") == 3);
  CHECK(sample(m, "slot_machine_deploy_duration_seconds_sum") > 0);
  CHECK(sample(m, "slot_machine_live_healthy") == 1);
  CHECK(sample(m, fmt::format("slot_machine_live_info{{slot=\"a\",commit=\"{}\"}}", v1)) == 1);
  CHECK(sample(m, "slot_machine_operation_running") == 0);
  // Five 200s from the app; its 404; the proxy's 400.
  CHECK(sample(m, "slot_machine_proxy_requests_total{code=\"2xx\"}") == 5);
  CHECK(sample(m, "slot_machine_proxy_requests_total{code=\"4xx\"}") == 2);
  CHECK(sample(m, "slot_machine_proxy_requests_total{code=\"5xx\"}") == 0);
  CHECK(sample(m, "slot_machine_proxy_request_duration_seconds_count") == 7);
  CHECK(sample(m, "slot_machine_proxy_open_connections") >= 0);

  // Only GET; the body is never a changed state.
  httplib::Client c("127.0.0.1", d.api_port());
  auto post = c.Post("/metrics", "", "text/plain");
  REQUIRE(post);
  CHECK(post->status == 405);
}

TEST_CASE("metrics: a crashed app started again counts in app_restarts_total; direct mode has no "
          "proxy families") {
  Site site({{"v1"}}, {{"restart", "on-failure"}});
  AppRepo& repo = site.repo;
  Daemon& d = site.d;
  const std::string v1 = site.commits[0];
  REQUIRE(d.deploy(v1).status == 200);
  ::kill(d.status()["live_pid"].get<int>(), SIGKILL);
  d.wait_status([](const json& j) { return j["crash_restarts"] == 1; }, 6s);
  auto got = scrape(d.api_port());
  REQUIRE(got);
  const auto checked = promtool(got->body, repo.home());
  CHECK_MESSAGE(checked.exit_code == 0, (checked.out + checked.err));
  CHECK(sample(got->body, "slot_machine_app_restarts_total{reason=\"crashed\"}") == 1);
  CHECK(sample(got->body, "slot_machine_app_restarts_total{reason=\"requested\"}") == 0);
  CHECK(sample(got->body, "slot_machine_build_info{version=\"") == -1);  // labels continue: not a series
  CHECK(got->body.find("slot_machine_build_info{version=") != std::string::npos);
  CHECK(got->body.find("mode=\"direct\"} 1") != std::string::npos);
  CHECK(got->body.find("slot_machine_proxy_") == std::string::npos);
}

TEST_CASE("metrics: behind the API token when one is set") {
  AppRepo repo;
  const std::string token = "metrics-token-0123456789abcdef";
  repo.write_config({{"api_token_file", secret_file(repo, "token", token).string()}});
  Daemon d(repo);
  auto without = scrape(d.api_port());
  REQUIRE(without);
  CHECK(without->status == 401);
  CHECK(without->body.find("slot_machine_") == std::string::npos);
  auto wrong = scrape(d.api_port(), token + "x");
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto with = scrape(d.api_port(), token);
  REQUIRE(with);
  CHECK(with->status == 200);
  CHECK(sample(with->body, "slot_machine_deploys_total{result=\"ok\"}") == 0);
  check_clean_stop(d);
}
