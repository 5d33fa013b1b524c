// Contract §14 canary: deploy --canary P serves the new version to P% of new visitors
// beside live, each kept on its side by a cookie; promote makes it live; rollback, or the
// canary exiting or failing its probes, ends it.

#include <doctest/doctest.h>
#include <httplib.h>
#include <signal.h>

#include <thread>

#include "harness.h"
#include "service_support.h"

using namespace spec;

namespace {
struct Visit {
  int status = 0;
  std::string body, set_cookie;
};
Visit visit(int port, const std::string& cookie = "", const std::string& path = "/") {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  httplib::Headers h;
  if (!cookie.empty()) h.emplace("Cookie", cookie);
  auto r = c.Get(path.c_str(), h);
  if (!r) return {};
  return {r->status, r->body, r->get_header_value("Set-Cookie")};
}
bool from(const Visit& v, const std::string& version) {
  return v.body.find("hello from " + version + " ") != std::string::npos;
}
/// A WebSocket opened with `cookie`: the greeting the app sends first ("testapp vX").
std::string websocket_greeting(int port, const std::string& cookie) {
  const std::string out = raw_exchange(
      port,
      "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: " + cookie + "\r\n\r\n",
      "testapp v");
  const auto at = out.find("testapp v");
  return at == std::string::npos ? out : out.substr(at, 10);
}
}  // namespace

TEST_CASE("canary: new visitors split by cookie and kept on their side (SSE, WebSocket too); promote makes it live") {
  Site site({{"vA"}, {"vB"}, {"vC"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  auto r = d.cli({"deploy", site.commits[1], "--canary", "30"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK_MESSAGE(r.out.find("30% of new visitors") != std::string::npos, r.out);
  json s = d.status();
  REQUIRE(s["canary"].is_object());
  CHECK(s["canary"]["commit"] == site.commits[1]);
  CHECK(s["canary"]["percent"] == 30);
  CHECK(s["live_commit"] == site.commits[0]);
  CHECK(s["operation"] == "");
  CHECK(d.cli({"status"}).out.find("canary:      slot") != std::string::npos);

  // New visitors: drawn, told by the cookie, answered by the side it names.
  int to_new = 0;
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    const Visit v = visit(d.public_port());
    REQUIRE(v.status == 200);
    const bool is_new = v.set_cookie == "slot-machine-canary=new; Path=/; HttpOnly; SameSite=Lax";
    CHECK_MESSAGE((is_new || v.set_cookie == "slot-machine-canary=old; Path=/; HttpOnly; SameSite=Lax"), v.set_cookie);
    CHECK_MESSAGE(from(v, is_new ? "vB" : "vA"), v.body);
    to_new += is_new;
  }
  // 30% of 400: 120, standard deviation 9; 60-180 is over six of them either way.
  CHECK_MESSAGE((to_new > 60 && to_new < 180), to_new);
  // A visitor with the cookie stays on its side and is not told again.
  for (int i = 0; i < 20; ++i) {
    const Visit n1 = visit(d.public_port(), "theme=dark; slot-machine-canary=new");
    CHECK(from(n1, "vB"));
    CHECK(n1.set_cookie.empty());
    const Visit o1 = visit(d.public_port(), "slot-machine-canary=old");
    CHECK(from(o1, "vA"));
    CHECK(o1.set_cookie.empty());
  }
  // SSE streams from its side; a WebSocket opens to its side.
  CHECK(visit(d.public_port(), "slot-machine-canary=new", "/events?n=2&ms=10").body.find("data: event 1") !=
        std::string::npos);
  CHECK(websocket_greeting(d.public_port(), "slot-machine-canary=new") == "testapp vB");
  CHECK(websocket_greeting(d.public_port(), "slot-machine-canary=old") == "testapp vA");
  // A forged value is drawn afresh and set again.
  const Visit forged = visit(d.public_port(), "slot-machine-canary=admin");
  CHECK(forged.set_cookie.rfind("slot-machine-canary=", 0) == 0);
  s = d.status();
  // Every request counted on its side: the 400, the 40 with a cookie, SSE, two WebSockets, the forged one.
  CHECK(s["canary"]["requests_new"].get<int>() + s["canary"]["requests_old"].get<int>() == n + 40 + 1 + 2 + 1);
  CHECK(s["canary"]["requests_new"].get<int>() >= to_new + 20 + 1 + 1);

  // Another deploy meanwhile: 409, saying what to do.
  Http busy = http_post(d.api_port(), "/deploy", json{{"commit", site.commits[2]}}.dump());
  CHECK(busy.status == 409);
  CHECK_MESSAGE(busy.body.find("promote") != std::string::npos, busy.body);
  const std::string metrics = http_get(d.api_port(), "/metrics").body;
  CHECK(metrics.find("slot_machine_canary_percent 30") != std::string::npos);
  CHECK(metrics.find("slot_machine_canary_requests_total{side=\"new\"}") != std::string::npos);

  // Promote: everyone on the new version, the old one the previous.
  r = d.cli({"promote"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  s = d.status();
  CHECK(s["canary"].is_null());
  CHECK(s["live_commit"] == site.commits[1]);
  CHECK(s["previous_commit"] == site.commits[0]);
  CHECK(from(visit(d.public_port(), "slot-machine-canary=old"), "vB"));
  const Visit after = visit(d.public_port());
  CHECK(from(after, "vB"));
  CHECK(after.set_cookie.empty());
  const json h = http_get(d.api_port(), "/history?limit=2").json_body()["entries"];
  CHECK(h[0]["action"] == "promote");
  CHECK(h[0]["commit"] == site.commits[1]);
  CHECK(h[1]["action"] == "canary");
  CHECK(h[1]["result"] == "ok");
  // Nothing to promote now: 409.
  r = d.cli({"promote"});
  CHECK(r.exit_code == 1);
  CHECK_MESSAGE(r.err.find("no canary runs") != std::string::npos, r.err);
  // And a rollback is a plain one again.
  REQUIRE(d.cli({"rollback"}).exit_code == 0);
  CHECK(d.status()["live_commit"] == site.commits[0]);
}

TEST_CASE("canary: rollback ends it, and one that exits or fails its probes ends by itself (canary-abort)") {
  Site site({{"vA"}, {"vB"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);

  REQUIRE(d.cli({"deploy", site.commits[1], "--canary", "50"}).exit_code == 0);
  int pid = d.status()["canary"]["pid"];
  auto r = d.cli({"rollback"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK_MESSAGE(r.out.find("ended the canary " + site.commits[1].substr(0, 12) + ": everyone is on " +
                           site.commits[0].substr(0, 12)) != std::string::npos,
                r.out);
  json s = d.status();
  CHECK(s["canary"].is_null());
  CHECK(s["live_commit"] == site.commits[0]);
  CHECK(kill(pid, 0) != 0);
  CHECK(from(visit(d.public_port(), "slot-machine-canary=new"), "vA"));
  json e = http_get(d.api_port(), "/history?limit=1").json_body()["entries"][0];
  CHECK(e["action"] == "canary-abort");
  CHECK(e["reason"] == "rollback requested");

  // It exits: ended within the monitor's second, everyone on live.
  REQUIRE(d.cli({"deploy", site.commits[1], "--canary", "50"}).exit_code == 0);
  pid = d.status()["canary"]["pid"];
  kill(pid, SIGKILL);
  s = d.wait_status([](const json& st) { return st["canary"].is_null(); }, 10s);
  REQUIRE(s["canary"].is_null());
  e = http_get(d.api_port(), "/history?limit=1").json_body()["entries"][0];
  CHECK(e["action"] == "canary-abort");
  CHECK_MESSAGE(e["reason"].get<std::string>().find("the canary stopped: killed by signal 9") == 0, e.dump());
  for (int i = 0; i < 10; ++i) CHECK(from(visit(d.public_port()), "vA"));

  // It fails three probes in a row.
  REQUIRE(d.cli({"deploy", site.commits[1], "--canary", "50"}).exit_code == 0);
  const int internal = d.status()["canary"]["internal_port"];
  REQUIRE(http_post(internal, "/control/unhealthy", "").status == 200);
  s = d.wait_status([](const json& st) { return st["canary"].is_null(); }, 15s);
  REQUIRE(s["canary"].is_null());
  e = http_get(d.api_port(), "/history?limit=1").json_body()["entries"][0];
  CHECK(e["action"] == "canary-abort");
  CHECK_MESSAGE(e["reason"].get<std::string>().find("failed 3 health probes") != std::string::npos, e.dump());
  CHECK(d.status()["live_commit"] == site.commits[0]);
  CHECK(d.status()["healthy"] == true);
}

TEST_CASE("canary: deploy --wait queues behind it until promote; bad input is refused and changes nothing") {
  Site site({{"vA"}, {"vB"}, {"vC"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  // Nothing live to share with: 409.
  Http h = http_post(d.api_port(), "/deploy", json{{"commit", site.commits[0]}, {"canary_percent", 10}}.dump());
  CHECK(h.status == 409);
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  for (const char* p : {"0", "100", "-5", "x", "12.5"}) {
    auto r = d.cli({"deploy", site.commits[1], "--canary", p});
    CHECK_MESSAGE(r.exit_code == 2, p);
  }
  for (const json& p : {json(0), json(100), json("30"), json(12.5), json(nullptr)}) {
    h = http_post(d.api_port(), "/deploy", json{{"commit", site.commits[1]}, {"canary_percent", p}}.dump());
    CHECK_MESSAGE(h.status == 400, p.dump());
    CHECK_MESSAGE(h.body.find("canary_percent") != std::string::npos, h.body);
  }
  CHECK(http_post(d.api_port(), "/promote", "{}").status == 409);
  json s = d.status();
  CHECK(s["canary"].is_null());
  CHECK(s["live_commit"] == site.commits[0]);

  REQUIRE(d.cli({"deploy", site.commits[1], "--canary", "20"}).exit_code == 0);
  RunResult queued;
  std::jthread waiting([&] { queued = d.cli({"deploy", site.commits[2], "--wait=60"}); });
  std::this_thread::sleep_for(500ms);
  CHECK(d.status()["canary"]["commit"] == site.commits[1]);  // still waiting
  REQUIRE(d.cli({"promote"}).exit_code == 0);
  waiting.join();
  CHECK_MESSAGE(queued.exit_code == 0, queued.err);
  s = d.status();
  CHECK(s["live_commit"] == site.commits[2]);
  CHECK(s["previous_commit"] == site.commits[1]);
}

TEST_CASE("canary: direct mode refuses it, naming proxy mode") {
  Site site({{"vA"}, {"vB"}});
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  const Http h = http_post(d.api_port(), "/deploy", json{{"commit", site.commits[1]}, {"canary_percent", 10}}.dump());
  CHECK(h.status == 400);
  CHECK_MESSAGE(h.body.find("proxy mode") != std::string::npos, h.body);
  CHECK(d.status()["live_commit"] == site.commits[0]);
}

TEST_CASE("canary: an upgrade ends it (canary-abort), the new daemon serving live alone") {
  Site site({{"vA"}, {"vB"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  REQUIRE(d.cli({"deploy", site.commits[1], "--canary", "50"}).exit_code == 0);
  const int pid = d.status()["canary"]["pid"];
  REQUIRE(upgrade(d).status == 200);
  const json s = d.status();
  CHECK(s["canary"].is_null());
  CHECK(s["live_commit"] == site.commits[0]);
  CHECK(kill(pid, 0) != 0);
  for (int i = 0; i < 10; ++i) CHECK(from(visit(d.public_port(), "slot-machine-canary=new"), "vA"));
  bool journalled = false;
  const json history = http_get(d.api_port(), "/history?limit=5").json_body();  // kept: iterated below
  for (const json& e : history["entries"])
    journalled = journalled || (e["action"] == "canary-abort" && e["reason"] == "the daemon was upgraded");
  CHECK_MESSAGE(journalled, history.dump());
  // Ended before the new daemon started: never killed as a stranger.
  CHECK_MESSAGE(d.log().find("the canary in slot") == std::string::npos, d.log());
}
