// Contract §15 max_request_body: a request whose Content-Length is over the app's limit
// gets 413 before the app sees anything; a chunked body is cut where it passes the limit.

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "apps_support.h"
#include "harness.h"

using namespace spec;

namespace {
long long received(const Daemon& d) { return std::stoll(http_get(d.internal_port(), "/received").body); }

std::string chunked_upload(size_t bytes) {
  std::string req = "POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  for (size_t sent = 0; sent < bytes;) {
    const size_t n = std::min<size_t>(300, bytes - sent);
    req += fmt::format("{:x}\r\n{}\r\n", n, std::string(n, 'x'));
    sent += n;
  }
  return req + "0\r\n\r\n";
}
std::string sized_upload(size_t bytes) {
  return fmt::format("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                     bytes, std::string(bytes, 'x'));
}
}  // namespace

TEST_CASE("max_request_body: 413 for a larger Content-Length before the app sees it; a chunked body cut at it") {
  Site site({{"vA"}}, {{"max_request_body", 1000}}, kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  const long long before = received(d);

  std::string r = raw_exchange(d.public_port(), sized_upload(1000));
  CHECK_MESSAGE(r.rfind("HTTP/1.1 200", 0) == 0, r);
  CHECK(r.find(R"("bytes":1000)") != std::string::npos);
  r = raw_exchange(d.public_port(), chunked_upload(900));
  CHECK_MESSAGE(r.rfind("HTTP/1.1 200", 0) == 0, r);
  CHECK(received(d) == before + 2);

  r = raw_exchange(d.public_port(), sized_upload(1001));
  CHECK_MESSAGE(r.rfind("HTTP/1.1 413", 0) == 0, r);
  CHECK_MESSAGE(r.find("over this app's max_request_body (1000 bytes)") != std::string::npos, r);
  // Even when the client waits for 100-continue: refused without it.
  r = raw_exchange(d.public_port(),
                   "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n");
  CHECK_MESSAGE(r.rfind("HTTP/1.1 413", 0) == 0, r);
  r = raw_exchange(d.public_port(), chunked_upload(5000));
  CHECK_MESSAGE(r.rfind("HTTP/1.1 413", 0) == 0, r);
  CHECK(received(d) == before + 2);  // neither reached the app whole
  // The app is fine, and so are the next requests.
  CHECK(http_get(d.public_port(), "/").status == 200);
}

TEST_CASE("max_request_body with several apps: each app's own file sets its own") {
  HostedApp blog("blog", {"blog.test"}, {{"max_request_body", 1000}}), shop("shop", {"shop.test"});
  AppRepo server;
  server_config(server, {&blog, &shop});
  Daemon d{server, kProxyMode};
  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);
  REQUIRE(deploy_app(d, "shop", shop.commits[0]).status == 200);
  const int port = server.config()["port"];
  auto upload = [&](const std::string& host, size_t bytes) {
    return raw_exchange(port, fmt::format("POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: "
                                          "close\r\n\r\n{}",
                                          host, bytes, std::string(bytes, 'x')));
  };
  CHECK(upload("blog.test", 2000).rfind("HTTP/1.1 413", 0) == 0);
  CHECK(upload("blog.test", 1000).rfind("HTTP/1.1 200", 0) == 0);
  CHECK(upload("shop.test", 2000).rfind("HTTP/1.1 200", 0) == 0);
}
