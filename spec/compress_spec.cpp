// Contract §15 compress: answers of compressible types over 1 KiB are compressed as they
// stream for a client that accepts br or gzip, with Vary; never twice, never for
// no-transform, HEAD, small or binary answers; SSE still arrives event by event. Checked
// with a real client (curl --compressed decodes what it gets).

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "apps_support.h"
#include "harness.h"

using namespace spec;

namespace {

/// curl with `args`; its output (stdout) and exit code.
RunResult curl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "--max-time", "20"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, fs::temp_directory_path(), {}, 30s);
}

/// The header lines of a GET (or `method`) of `path` sent with `accept` as Accept-Encoding
/// (none when empty), lower-cased names: "content-encoding: br\r\n..." as curl prints them.
std::string header_of(int port, const std::string& path, const std::string& accept, const std::string& method = "GET",
                      const std::string& host = "") {
  std::vector<std::string> args = {"-o", "/dev/null", "-D", "-", "-X", method};
  if (method == "HEAD") args = {"-I"};
  if (!accept.empty()) args.insert(args.end(), {"-H", "Accept-Encoding: " + accept});
  if (!host.empty()) args.insert(args.end(), {"-H", "Host: " + host});
  args.push_back(fmt::format("http://127.0.0.1:{}{}", port, path));
  std::string out = curl(args).out;
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool has(const std::string& header, const std::string& line) { return header.find(line) != std::string::npos; }

/// Sends `request` and reads the answer until the peer closes: what came, and how many
/// times it came after a pause of over 200 ms.
std::pair<std::string, int> arrival_gaps(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  int gaps = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    auto last = std::chrono::steady_clock::now();
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last > 200ms) ++gaps;
      last = now;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return {out, gaps};
}

}  // namespace

TEST_CASE("compress: br for a browser, gzip for a gzip client, decoded by curl to the app's bytes; Vary; weak ETag") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  const int port = d.public_port();
  const std::string url = fmt::format("http://127.0.0.1:{}/page?bytes=200000", port);
  const std::string plain = curl({url}).out;
  REQUIRE(plain.size() == 200000);

  // curl --compressed offers what it can decode (gzip and br here) and decodes the answer.
  for (const std::string accept : {"gzip", "br", "gzip, deflate, br"}) {
    CAPTURE(accept);
    auto r = curl({"--compressed", "-H", "Accept-Encoding: " + accept, "-w", "\n%{size_download}", url});
    REQUIRE(r.exit_code == 0);
    const auto nl = r.out.rfind('\n');
    CHECK(r.out.substr(0, nl) == plain);
    CHECK(std::stoul(r.out.substr(nl + 1)) < plain.size() / 5);  // what went over the wire
    const auto h = header_of(port, "/page?bytes=200000", accept);
    CHECK_MESSAGE(has(h, accept == "gzip" ? "content-encoding: gzip" : "content-encoding: br"), h);
    CHECK(has(h, "vary: accept-encoding"));
    CHECK(has(h, "etag: w/\"page-200000\""));
    CHECK(has(h, "transfer-encoding: chunked"));
    CHECK_FALSE(has(h, "content-length:"));
  }
  // A client that accepts none gets the bytes as they are, told they vary.
  auto h = header_of(port, "/page?bytes=200000", "");
  CHECK_FALSE(has(h, "content-encoding"));
  CHECK(has(h, "vary: accept-encoding"));
  CHECK(has(h, "content-length: 200000"));
  CHECK(has(h, "etag: \"page-200000\""));
  CHECK_FALSE(has(header_of(port, "/page?bytes=200000", "br;q=0, gzip;q=0"), "content-encoding"));
  CHECK(has(header_of(port, "/page?bytes=200000", "br;q=0.5, gzip"), "content-encoding: gzip"));
  CHECK_FALSE(has(header_of(port, "/page?bytes=200000", "deflate, identity"), "content-encoding"));

  // JSON, JavaScript and SVG are compressed; binary types are not.
  for (const std::string type : {"application/json", "application/javascript", "image/svg+xml", "text/css"}) {
    CAPTURE(type);
    CHECK(has(header_of(port, "/page?bytes=5000&type=" + type, "gzip"), "content-encoding: gzip"));
  }
  for (const std::string type : {"image/png", "application/octet-stream", "application/zip"}) {
    CAPTURE(type);
    const auto hb = header_of(port, "/page?bytes=5000&type=" + type, "gzip");
    CHECK_FALSE(has(hb, "content-encoding"));
    CHECK_FALSE(has(hb, "vary"));
  }
}

TEST_CASE("compress: never small, already coded, no-transform or HEAD answers; SSE compressed and flushed per event") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  const int port = d.public_port();
  CHECK_FALSE(has(header_of(port, "/page?bytes=1023", "gzip"), "content-encoding"));  // under 1 KiB: not worth it
  CHECK(has(header_of(port, "/page?bytes=1024", "gzip"), "content-encoding: gzip"));
  // The app's own coding is left alone (not coded twice): its bytes arrive as sent.
  auto coded = header_of(port, "/page?bytes=5000&encoding=x-custom", "gzip");
  CHECK(has(coded, "content-encoding: x-custom\r\n"));
  CHECK(has(coded, "content-length: 5000"));
  auto nt = header_of(port, "/page?bytes=5000&cache=no-transform", "gzip");
  CHECK_FALSE(has(nt, "content-encoding"));
  CHECK(has(nt, "content-length: 5000"));
  auto head = header_of(port, "/page?bytes=5000", "gzip", "HEAD");
  CHECK_MESSAGE(has(head, "http/1.1 200"), head);
  CHECK_FALSE(has(head, "content-encoding"));
  CHECK(has(head, "content-length: 5000"));

  // An event stream is compressed and still arrives event by event: the app sends one
  // every 400 ms, and the coded bytes come in as many bursts (held to the end, they would
  // come in one); curl decodes them to the events.
  const auto bursts = arrival_gaps(port, "GET /events?n=4&ms=400 HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: "
                                         "gzip\r\nConnection: close\r\n\r\n");
  CHECK_MESSAGE(bursts.first.find("Content-Encoding: gzip") != std::string::npos, bursts.first);
  CHECK(bursts.second >= 3);
  auto events = curl({"--compressed", "-H", "Accept-Encoding: gzip",
                      fmt::format("http://127.0.0.1:{}/events?n=4&ms=100", port)});
  CHECK(events.out == "data: event 0\n\ndata: event 1\n\ndata: event 2\n\ndata: event 3\n\n");
  CHECK(has(header_of(port, "/events?n=1&ms=0", "gzip"), "content-encoding: gzip"));
}

TEST_CASE("compress: [] turns it off, [\"gzip\"] offers gzip only; bad values are refused naming the field") {
  {
    Site site({{"vA"}}, {{"compress", json::array()}}, kProxyMode);
    REQUIRE(site.d.deploy(site.commits[0]).status == 200);
    auto h = header_of(site.d.public_port(), "/page?bytes=5000", "gzip, br");
    CHECK_FALSE(has(h, "content-encoding"));
    CHECK_FALSE(has(h, "vary"));
  }
  {
    Site site({{"vA"}}, {{"compress", {"gzip"}}}, kProxyMode);
    REQUIRE(site.d.deploy(site.commits[0]).status == 200);
    CHECK(has(header_of(site.d.public_port(), "/page?bytes=5000", "gzip, br"), "content-encoding: gzip"));
    CHECK_FALSE(has(header_of(site.d.public_port(), "/page?bytes=5000", "br"), "content-encoding"));
  }
  AppRepo repo;
  for (const json& bad : {json("gzip"), json({"gzip", "zstd"}), json({"br", "br"}), json({1})}) {
    CAPTURE(bad.dump());
    auto r = start_refused(repo, {{"compress", bad}});
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(r.err.find("config: \"compress\"") != std::string::npos, r.err);
    CHECK(r.err.find("from \"br\" and \"gzip\"") != std::string::npos);
  }
}

TEST_CASE("compress with several apps: each app's own file sets its own") {
  HostedApp blog("blog", {"blog.test"}, {{"compress", json::array()}}), shop("shop", {"shop.test"});
  AppRepo server;
  server_config(server, {&blog, &shop});
  Daemon d{server, kProxyMode};
  REQUIRE(deploy_app(d, "blog", blog.commits[0]).status == 200);
  REQUIRE(deploy_app(d, "shop", shop.commits[0]).status == 200);
  const int port = server.config()["port"];
  CHECK_FALSE(has(header_of(port, "/page?bytes=5000", "gzip", "GET", "blog.test"), "content-encoding"));
  CHECK(has(header_of(port, "/page?bytes=5000", "gzip", "GET", "shop.test"), "content-encoding: gzip"));
}
