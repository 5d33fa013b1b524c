// Streamed progress: POST /deploy and /rollback with Accept: application/x-ndjson, and
// the CLI that renders it.

#include <doctest/doctest.h>
#include <httplib.h>

#include <sstream>

#include "harness.h"

using namespace spec;

namespace {
/// POSTs with Accept: application/x-ndjson; returns every line parsed, in order.
std::vector<json> stream(int port, const std::string& path, const std::string& body) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  auto res = c.Post(path, {{"Accept", "application/x-ndjson"}}, body, "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "application/x-ndjson");
  std::vector<json> out;
  std::istringstream lines(res->body);
  for (std::string line; std::getline(lines, line);) out.push_back(json::parse(line));
  return out;
}

std::vector<std::string> stages(const std::vector<json>& events) {
  std::vector<std::string> out;
  for (const auto& e : events)
    if (e.value("event", "") == "stage") out.push_back(e["stage"]);
  return out;
}
}  // namespace

TEST_CASE("progress: a streamed deploy shows every stage and setup line, then the plain answer") {
  Site site({{"vA"}, {"vB"}}, {{"setup_command", "echo step one; sleep 0.2; echo step two"}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1];
  REQUIRE(d.deploy(a).status == 200);
  auto events = stream(d.api_port(), "/deploy", json{{"commit", b}}.dump());
  REQUIRE(events.size() >= 10);
  CHECK(stages(events) ==
        std::vector<std::string>{"resolve", "checkout", "setup", "start", "health", "switch", "drain"});
  std::vector<std::string> output;
  long long last_at = 0;
  for (const auto& e : events) {
    if (e.value("event", "") == "output") output.push_back(e["line"]);
    if (e.contains("at_ms")) {
      CHECK(e["at_ms"].get<long long>() >= last_at);  // in order, as they happened
      last_at = e["at_ms"];
    }
  }
  CHECK(output == std::vector<std::string>{"step one", "step two"});
  bool healthy_seen = false;
  for (const auto& e : events)
    if (e.value("event", "") == "health" && e["healthy"] == true) healthy_seen = true;
  CHECK(healthy_seen);
  const json& done = events[events.size() - 2];
  CHECK(done["event"] == "done");
  CHECK(done["status"] == 200);
  CHECK(done["duration_ms"].get<long long>() >= 200);
  CHECK(events.back() == json{{"success", true}, {"slot", "b"}, {"commit", b}, {"previous_commit", a}});

  auto rb = stream(d.api_port(), "/rollback", "{}");
  CHECK(stages(rb) == std::vector<std::string>{"start", "health", "switch", "drain"});
  CHECK(rb.back()["success"] == true);
  CHECK(rb.back()["commit"] == a);

  // A failure streams too: the done event carries the status the plain call would have.
  auto bad = stream(d.api_port(), "/deploy", json{{"commit", "no-such-rev"}}.dump());
  CHECK(bad[bad.size() - 2]["status"] == 404);
  CHECK(bad.back()["success"] == false);
  CHECK(http_post(d.api_port(), "/deploy", "{}").status == 400);  // plain callers: as before
}

TEST_CASE("progress: the CLI prints each stage with its duration, setup output indented") {
  Site site({{"vA"}, {"bad", "--start-unhealthy"}}, {{"setup_command", "echo installing $(cat VERSION)"}, {"health_timeout_ms", 2000}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0], bad = site.commits[1];
  auto r = d.cli({"deploy", a});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("deploying " + a + "\n") == 0);
  for (const char* stage : {"  resolve ", "  checkout ", "  setup ", "  start ", "  health ", "  switch "})
    CHECK_MESSAGE(r.out.find(stage) != std::string::npos, stage << " missing in:\n" << r.out);
  CHECK(r.out.find("    | installing vA\n") != std::string::npos);
  CHECK(r.out.find(" ms\n") != std::string::npos);
  CHECK(r.out.find("\033[") == std::string::npos);  // not a terminal: plain text
  CHECK(r.out.rfind("deployed " + a + " in slot a") != std::string::npos);

  auto q = d.cli({"deploy", "--quiet", "--force", a});  // the live commit: only --force redeploys it
  CHECK(q.exit_code == 0);
  CHECK(q.out.rfind("deployed " + a + " in slot b", 0) == 0);
  CHECK(std::count(q.out.begin(), q.out.end(), '\n') == 1);

  auto rb = d.cli({"rollback"});
  CHECK(rb.exit_code == 0);
  CHECK(rb.out.find("rolling back\n") == 0);
  auto f = d.cli({"deploy", bad});
  CHECK(f.exit_code == 1);
  CHECK(f.out.find("  health ") != std::string::npos);
  CHECK(f.out.find("    health check") != std::string::npos);  // a slow health check is shown
  CHECK(f.err.find("deploy failed (HTTP 500)") != std::string::npos);

}
