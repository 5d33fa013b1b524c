// Contract §12: control over running operations: waiting for one that runs (Prefer: wait=N).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "control_support.h"
#include "harness.h"

using namespace spec;

namespace {
/// POST with `Prefer: <prefer>`.
Http post_prefer(int port, const std::string& path, const std::string& body, const std::string& prefer) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  auto res = c.Post(path, {{"Prefer", prefer}}, body, "application/json");
  return res ? Http{res->status, res->body} : Http{};
}
std::string deploy_body(const std::string& commit) { return json{{"commit", commit}}.dump(); }
}  // namespace

TEST_CASE("Prefer: wait that is not a whole number of seconds from 0 to 86400 is 400") {
  Site site({{"vA"}});
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  for (const char* bad : {"wait=abc", "wait=-1", "wait=86401", "wait=99999999999", "wait=", "wait=1.5"}) {
    auto r = post_prefer(d.api_port(), "/deploy", deploy_body(a), bad);
    CHECK_MESSAGE(r.status == 400, bad);
    CHECK(r.body.find("Prefer: wait must be a whole number of seconds") != std::string::npos);
  }
  CHECK(d.status()["live_commit"] == "");  // nothing was deployed
  CHECK(post_prefer(d.api_port(), "/deploy", deploy_body(a), "respond-async, wait=5").status == 200);
}

TEST_CASE("waiting callers are served in arrival order; one that does not wait still gets 409; "
          "a wait that runs out is 409") {
  Site site({{"vA", "--boot-delay 2"}, {"vB"}, {"vC"}});
  Daemon& d = site.d;
  const std::string slow = site.commits[0], b = site.commits[1], c = site.commits[2];
  Http first, second, third;
  std::jthread t1([&] { first = d.deploy(slow); });
  REQUIRE(wait_stage(d, "deploy", "health"));
  std::jthread t2([&] { second = post_prefer(d.api_port(), "/deploy", deploy_body(b), "wait=30"); });
  std::this_thread::sleep_for(200ms);
  std::jthread t3([&] { third = post_prefer(d.api_port(), "/deploy", deploy_body(c), "wait=30"); });
  std::this_thread::sleep_for(200ms);
  CHECK(d.deploy(c).status == 409);  // no Prefer: refused at once, as before
  auto expired = post_prefer(d.api_port(), "/deploy", deploy_body(c), "wait=1");
  CHECK(expired.status == 409);
  CHECK(expired.body.find("waited 1 s") != std::string::npos);
  t1.join();
  t2.join();
  t3.join();
  CHECK(first.status == 200);
  CHECK(second.status == 200);
  CHECK(third.status == 200);
  auto h = http_get(d.api_port(), "/history?limit=3").json_body()["entries"];
  REQUIRE(h.size() == 3);
  CHECK(h[2]["commit"] == slow);  // newest first
  CHECK(h[1]["commit"] == b);
  CHECK(h[0]["commit"] == c);
  CHECK(d.status()["live_commit"] == c);
}

TEST_CASE("a waiting caller that disconnects gives up its place; the daemon's shutdown answers "
          "waiting callers 503") {
  Site site({{"vA", "--boot-delay 2"}, {"vGone"}, {"vB", "--boot-delay 3"}});
  Daemon& d = site.d;
  const std::string slow = site.commits[0], gone = site.commits[1], b = site.commits[2];
  std::jthread t1([&] { d.deploy(slow); });
  REQUIRE(wait_stage(d, "deploy", "health"));
  // A caller that waits, then goes away.
  const std::string body = deploy_body(gone);
  const std::string req = "POST /deploy HTTP/1.1\r\nHost: x\r\nPrefer: wait=30\r\nContent-Type: "
                          "application/json\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\n\r\n" + body;
  std::jthread quitter([&] {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(d.api_port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0)
      (void)!send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(500ms);
    close(fd);
  });
  quitter.join();
  t1.join();
  std::this_thread::sleep_for(300ms);
  auto h = http_get(d.api_port(), "/history?limit=5").json_body()["entries"];
  for (const auto& e : h) CHECK(e["commit"] != gone);  // it never ran
  CHECK(d.status()["live_commit"] == slow);

  // Shutdown while one operation runs and another caller waits: the waiter gets 503.
  Http running, waiting;
  std::jthread t2([&] { running = d.deploy(b); });
  REQUIRE(wait_stage(d, "deploy", "health"));
  std::jthread t3([&] { waiting = post_prefer(d.api_port(), "/deploy", deploy_body(slow), "wait=30"); });
  std::this_thread::sleep_for(300ms);
  CHECK(d.stop() == 0);
  t2.join();
  t3.join();
  CHECK(waiting.status == 503);
  CHECK(tagged_processes(d.tag()).empty());
}
