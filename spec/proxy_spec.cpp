// Contract §4 proxy mode (the default): the daemon owns the public port.

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "harness.h"

using namespace spec;

namespace {
std::string version_at(int port) {
  auto r = http_get(port, "/", 5s);
  if (r.status != 200) return "HTTP " + std::to_string(r.status);
  auto from = r.body.find("hello from ") + 11;
  return r.body.substr(from, r.body.find(' ', from) - from);
}
}  // namespace

TEST_CASE("proxy: the public port refuses before the first deploy, then serves the app") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  CHECK(d.status()["mode"] == "proxy");
  CHECK_FALSE(port_open(d.public_port()));
  REQUIRE(d.deploy(a).status == 200);
  CHECK(version_at(d.public_port()) == "vA");
  auto s = d.status();
  CHECK(s["live_port"] != d.public_port());  // the app has its own dynamic port
  CHECK(http_get(d.internal_port(), "/healthz").status == 200);  // forwarded to the app
  check_clean_stop(d);
  CHECK_FALSE(port_open(d.public_port()));
}

TEST_CASE("proxy: the old version answers every request while a slow one deploys") {
  Site site({{"vA"}, {"vB", "--boot-delay 1"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1];
  REQUIRE(d.deploy(a).status == 200);
  std::atomic<bool> done{false};
  std::vector<std::string> seen;
  std::jthread poller([&] {
    while (!done) {
      seen.push_back(version_at(d.public_port()));
      std::this_thread::sleep_for(5ms);
    }
  });
  auto r = d.deploy(b);
  std::this_thread::sleep_for(100ms);
  done = true;
  poller.join();
  REQUIRE(r.status == 200);
  REQUIRE(seen.size() > 20);
  size_t first_b = 0;
  while (first_b < seen.size() && seen[first_b] == "vA") ++first_b;
  CHECK(first_b > 10);  // vA served throughout the one-second boot
  for (size_t i = 0; i < seen.size(); ++i)
    CHECK_MESSAGE(seen[i] == (i < first_b ? "vA" : "vB"), "request " << i << ": " << seen[i]);
}

TEST_CASE("proxy: a request in flight on the old app completes across a deploy") {
  Site site({{"vA"}, {"vB"}}, {{"drain_timeout_ms", 5000}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1];
  REQUIRE(d.deploy(a).status == 200);
  Http slow;
  std::jthread t([&] { slow = http_get(d.public_port(), "/slow?ms=1200", 10s); });
  std::this_thread::sleep_for(200ms);
  auto start = std::chrono::steady_clock::now();
  REQUIRE(d.deploy(b).status == 200);
  CHECK(std::chrono::steady_clock::now() - start > 700ms);  // it waited for the request
  t.join();
  CHECK(slow.status == 200);
  CHECK(slow.body.find("slow done") != std::string::npos);
  CHECK(version_at(d.public_port()) == "vB");
}

TEST_CASE("proxy: an idle keep-alive connection reaches the new version after a deploy") {
  Site site({{"vA"}, {"vB"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1];
  REQUIRE(d.deploy(a).status == 200);
  httplib::Client c("127.0.0.1", d.public_port());
  c.set_keep_alive(true);
  auto r1 = c.Get("/");
  REQUIRE(r1);
  CHECK(r1->body.find("vA") != std::string::npos);
  REQUIRE(d.deploy(b).status == 200);
  auto r2 = c.Get("/");
  REQUIRE(r2);
  CHECK(r2->status == 200);
  CHECK(r2->body.find("vB") != std::string::npos);
  REQUIRE(d.rollback().status == 200);
  auto r3 = c.Get("/");
  REQUIRE(r3);
  CHECK(r3->body.find("vA") != std::string::npos);
  c.stop();
}

TEST_CASE("proxy: Server-Sent Events arrive as they are sent") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  httplib::Client c("127.0.0.1", d.public_port());
  std::vector<std::chrono::steady_clock::time_point> arrivals;
  std::string body;
  auto r = c.Get("/events?n=3&ms=400", [&](const char* data, size_t len) {
    arrivals.push_back(std::chrono::steady_clock::now());
    body.append(data, len);
    return true;
  });
  REQUIRE(r);
  CHECK(body.find("data: event 2") != std::string::npos);
  REQUIRE(arrivals.size() >= 3);
  CHECK(arrivals.back() - arrivals.front() > 600ms);  // not buffered until the end
}

TEST_CASE("proxy: bad requests get 400/431, X-Forwarded-* reach the app, Host is kept") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  CHECK(raw_exchange(d.public_port(), "GARBAGE\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
  CHECK(raw_exchange(d.public_port(), "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
            .rfind("HTTP/1.1 400", 0) == 0);
  std::string huge = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(32 * 1024, 'a') + "\r\n\r\n";
  CHECK(raw_exchange(d.public_port(), huge).rfind("HTTP/1.1 431", 0) == 0);
  auto h = raw_exchange(d.public_port(),
                        "GET /headers HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n");
  auto body = json::parse(h.substr(h.find("\r\n\r\n") + 4));
  CHECK(body["Host"] == "example.test");
  CHECK(body["X-Forwarded-For"] == "127.0.0.1");
  CHECK(body["X-Forwarded-Proto"] == "http");
  CHECK(body["X-Forwarded-Host"] == "example.test");
  CHECK(version_at(d.public_port()) == "vA");  // still serving after the bad ones
}

TEST_CASE("proxy: a failed deploy never touches the live app; crashes answer 502") {
  Site site({{"vA"}, {"bad", "--start-unhealthy"}}, {{"health_timeout_ms", 2000}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0], bad = site.commits[1];
  REQUIRE(d.deploy(a).status == 200);
  int pid = d.status()["live_pid"];
  auto r = d.deploy(bad);
  CHECK(r.status == 500);
  CHECK(r.json_body()["stage"] == "health");
  auto s = d.status();
  CHECK(s["live_pid"] == pid);  // not restarted: it never stopped
  CHECK(s["healthy"] == true);
  CHECK(version_at(d.public_port()) == "vA");
  CHECK(tagged_processes(d.tag()).size() == 2);  // daemon + the one live app
  http_post(d.internal_port(), "/control/crash", "");
  d.wait_status([](const json& s) { return s["healthy"] == false; }, 3s);
  CHECK(http_get(d.public_port(), "/").status == 502);
}

TEST_CASE("proxy: rollback starts the previous slot on fresh ports and drains the old one") {
  Site site({{"vA"}, {"vB"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1];
  REQUIRE(d.deploy(a).status == 200);
  REQUIRE(d.deploy(b).status == 200);
  int b_port = d.status()["live_port"];
  REQUIRE(d.rollback().status == 200);
  auto s = d.status();
  CHECK(s["live_commit"] == a);
  CHECK(s["previous_commit"] == b);
  CHECK(s["live_port"] != b_port);
  CHECK(version_at(d.public_port()) == "vA");
  CHECK(tagged_processes(d.tag()).size() == 2);
}

TEST_CASE("proxy_workers: that many event loops serve the connections, counted as one") {
  Site site({{"vA"}}, {{"proxy_workers", 3}}, kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  // Connections one after the other: handed to the loops in turn, each answered.
  for (int i = 0; i < 30; ++i) REQUIRE(http_get(d.public_port(), "/").status == 200);
  int loops = 0;
  for (const auto& task : fs::directory_iterator(fmt::format("/proc/{}/task", d.pid()))) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    loops += name.rfind("sm-proxy-", 0) == 0;
  }
  CHECK(loops == 3);
  const std::string metrics = http_get(d.api_port(), "/metrics").body;
  CHECK_MESSAGE(metrics.find("slot_machine_proxy_requests_total{code=\"2xx\"} 30") != std::string::npos, metrics);
}
