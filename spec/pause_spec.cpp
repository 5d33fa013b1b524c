// Contract §14 pause: new requests wait, body unread, until resume sends them to
// whatever is live then; at the timeout they get 503 with Retry-After.

#include <doctest/doctest.h>
#include <httplib.h>

#include <thread>

#include "harness.h"

using namespace spec;

TEST_CASE("pause: held requests are answered after resume by the version deployed meanwhile, none failed") {
  Site site({{"vA"}, {"vB"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  auto r = d.cli({"pause", "--timeout", "60"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(d.cli({"pause"}).exit_code == 1);  // a second pause: 409
  CHECK(http_post(d.api_port(), "/pause", "").status == 409);

  constexpr int kHeld = 8;
  std::vector<Http> answers(kHeld);
  std::vector<std::jthread> clients;
  for (int i = 0; i < kHeld; ++i) {
    clients.emplace_back([&, i] { answers[i] = http_get(d.public_port(), "/", 30s); });
    std::this_thread::sleep_for(20ms);
  }
  json s = d.wait_status([](const json& s) { return s["held_requests"] == kHeld; }, 10s);
  CHECK(s["held_requests"] == kHeld);
  CHECK(s["paused_since"].is_string());
  CHECK(d.cli({"status"}).out.find("request(s) held") != std::string::npos);
  // A deploy goes on during the pause; the held requests go to it.
  REQUIRE(d.deploy(site.commits[1]).status == 200);
  for (const auto& a : answers) CHECK(a.status == 0);  // still waiting
  r = d.cli({"resume"});
  CHECK(r.exit_code == 0);
  CHECK_MESSAGE(r.out.find("resumed: " + std::to_string(kHeld) + " held request(s)") != std::string::npos, r.out);
  clients.clear();  // joined
  for (const auto& a : answers) {
    CHECK(a.status == 200);
    CHECK(a.body.find("hello from vB") == 0);
  }
  s = d.status();
  CHECK(s["paused_since"].is_null());
  CHECK(s["held_requests"] == 0);
  CHECK(d.cli({"resume"}).exit_code == 1);  // not paused: 409
}

TEST_CASE("pause: at the timeout held requests get 503 with Retry-After and the pause ends; bad input") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  REQUIRE(http_post(d.api_port(), "/pause", R"({"timeout_s": 1})").status == 200);
  httplib::Client c("127.0.0.1", d.public_port());
  c.set_read_timeout(10, 0);
  const auto began = std::chrono::steady_clock::now();
  auto res = c.Get("/");
  REQUIRE(res);
  CHECK(res->status == 503);
  CHECK(res->get_header_value("Retry-After") == "5");
  CHECK(std::chrono::steady_clock::now() - began >= 900ms);
  CHECK(d.wait_status([](const json& s) { return s["paused_since"].is_null(); }, 3s)["paused_since"].is_null());
  CHECK(http_get(d.public_port(), "/").status == 200);  // the pause ended by itself

  CHECK(http_post(d.api_port(), "/pause", R"({"timeout_s": 0})").status == 400);
  CHECK(http_post(d.api_port(), "/pause", R"({"timeout_s": 601})").status == 400);
  CHECK(http_post(d.api_port(), "/pause", R"({"timeout": 5})").status == 400);
  CHECK(d.cli({"pause", "--timeout", "0"}).exit_code == 2);
  CHECK(d.status()["paused_since"].is_null());  // nothing changed

  AppRepo repo;
  repo.commit("vA");
  repo.write_config();
  Daemon direct(repo);  // --no-proxy
  const Http h = http_post(direct.api_port(), "/pause", "");
  CHECK(h.status == 400);
  CHECK(h.json_body()["error"].get<std::string>().find("pause needs proxy mode") != std::string::npos);
}

TEST_CASE("pause: an upgrade resumes (a pause survives nothing); the held requests are answered") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  REQUIRE(http_post(d.api_port(), "/pause", R"({"timeout_s": 60})").status == 200);
  std::vector<Http> answers(3);
  std::vector<std::jthread> clients;
  for (int i = 0; i < 3; ++i) clients.emplace_back([&, i] { answers[i] = http_get(d.public_port(), "/", 30s); });
  REQUIRE(d.wait_status([](const json& s) { return s["held_requests"] == 3; }, 10s)["held_requests"] == 3);
  const Http h = http_post(d.api_port(), "/upgrade", "{}", 60s);
  REQUIRE_MESSAGE(h.status == 200, h.body);
  CHECK(d.follow_upgrade(h.json_body()["pid"]) == 0);
  clients.clear();
  for (const auto& a : answers) CHECK(a.status == 200);
  CHECK(d.status()["paused_since"].is_null());
}
