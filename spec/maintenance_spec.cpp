// Contract §14 maintenance: every request of the app answers 503 with Retry-After and a
// page, /.slot-machine/ paths still work, deploys go on, it outlives a restart.

#include <doctest/doctest.h>
#include <httplib.h>
#include <signal.h>

#include <fstream>

#include "apps_support.h"
#include "harness.h"

using namespace spec;

namespace {
struct Answer {
  int status = 0;
  std::string body, retry_after, content_type;
};
Answer get_with(int port, const std::string& path, const std::string& accept, const std::string& host = "") {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  httplib::Headers h{{"Accept", accept}};
  if (!host.empty()) h.emplace("Host", host);
  auto r = c.Get(path.c_str(), h);
  if (!r) return {};
  return {r->status, r->body, r->get_header_value("Retry-After"), r->get_header_value("Content-Type")};
}
}  // namespace

TEST_CASE("maintenance: 503 with Retry-After and a page, HTML or text; deploys go on; it outlives a restart") {
  Site site({{"vA"}, {"vB"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  auto r = d.cli({"maintenance", "on"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("maintenance on since") != std::string::npos);
  Answer html = get_with(d.public_port(), "/", "text/html,application/xhtml+xml");
  CHECK(html.status == 503);
  CHECK(html.retry_after == "60");
  CHECK(html.content_type == "text/html; charset=utf-8");
  CHECK(html.body.find("<h1>Down for maintenance</h1>") != std::string::npos);
  Answer text = get_with(d.public_port(), "/anything?x=1", "*/*");
  CHECK(text.status == 503);
  CHECK(text.body == "down for maintenance; try again in 60 s\n");
  // slot-machine's own paths are not the app's: they go on (testapp answers them 404).
  CHECK(get_with(d.public_port(), "/.slot-machine/x", "*/*").status == 404);
  json s = d.status();
  CHECK(s["maintenance"]["retry_after_s"] == 60);
  CHECK(d.cli({"status"}).out.find("maintenance: ON since") != std::string::npos);

  // A deploy goes on (its health checks reach the app directly); still in maintenance.
  REQUIRE(d.deploy(site.commits[1]).status == 200);
  CHECK(get_with(d.public_port(), "/", "*/*").status == 503);

  // Its own page and Retry-After; kept by a daemon killed and started again.
  const fs::path page = site.repo.home() / "down.html";
  std::ofstream(page) << "<p>Back at noon. Ünïcödé</p>";
  r = d.cli({"maintenance", "on", "--page", page.string(), "--retry-after", "120"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  REQUIRE(d.stop(SIGKILL) == 128 + SIGKILL);
  d.restart();
  html = get_with(d.public_port(), "/", "text/html");
  CHECK(html.status == 503);
  CHECK(html.retry_after == "120");
  CHECK(html.body == "<p>Back at noon. Ünïcödé</p>");
  CHECK(d.status()["maintenance"]["retry_after_s"] == 120);

  r = d.cli({"maintenance", "off"});
  CHECK(r.exit_code == 0);
  CHECK(get_with(d.public_port(), "/", "*/*").body.find("hello from vB") == 0);
  CHECK(d.status()["maintenance"].is_null());
}

TEST_CASE("maintenance: bad input is refused and changes nothing; direct mode says it needs the proxy") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  auto r = d.cli({"maintenance", "on", "--page", "/nonexistent/page.html"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("cannot read --page /nonexistent/page.html") != std::string::npos);
  const fs::path big = site.repo.home() / "big.html", latin1 = site.repo.home() / "latin1.html";
  std::ofstream(big) << std::string((1 << 20) + 1, 'x');
  std::ofstream(latin1) << "caf\xe9";
  r = d.cli({"maintenance", "on", "--page", big.string()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("a page is at most 1 MiB") != std::string::npos);
  r = d.cli({"maintenance", "on", "--page", latin1.string()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("is not UTF-8 text") != std::string::npos);
  r = d.cli({"maintenance", "on", "--retry-after", "0"});
  CHECK(r.exit_code == 2);
  r = d.cli({"maintenance", "maybe"});
  CHECK(r.exit_code == 2);
  CHECK(http_post(d.api_port(), "/maintenance", R"({"enabled": "yes"})").status == 400);
  CHECK(http_post(d.api_port(), "/maintenance", R"({"enabled": true, "retry_after_s": 0})").status == 400);
  CHECK(http_post(d.api_port(), "/maintenance", R"({"enabled": true, "color": "red"})").status == 400);
  CHECK(http_post(d.api_port(), "/maintenance", "{\"enabled\": true, \"page\": \"caf\xe9\"}").status == 400);
  CHECK(d.status()["maintenance"].is_null());  // nothing changed
  CHECK(get_with(d.public_port(), "/", "*/*").status == 200);

  AppRepo repo;
  repo.commit("vA");
  repo.write_config();
  Daemon direct(repo);  // --no-proxy
  const Http h = http_post(direct.api_port(), "/maintenance", R"({"enabled": true})");
  CHECK(h.status == 400);
  CHECK(h.json_body()["error"].get<std::string>().find("maintenance needs proxy mode") != std::string::npos);
}

TEST_CASE("maintenance with several apps: one app's hosts only") {
  TwoApps two;
  Daemon& d = two.d;
  const int port = two.port;
  REQUIRE(http_post(d.api_port(), "/apps/shop/maintenance", R"({"enabled": true, "retry_after_s": 30})").status == 200);
  CHECK(get_with(port, "/", "*/*", "shop.test").status == 503);
  CHECK(get_with(port, "/", "*/*", "shop.test").retry_after == "30");
  CHECK(get_with(port, "/", "*/*", "blog.test").status == 200);
  CHECK(app_status(d, "blog")["maintenance"].is_null());
}
