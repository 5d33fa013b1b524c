// Contract §4 proxy mode: what streams through the proxy — WebSockets, large bodies,
// bodies framed by closing the connection — and how it answers a stalled app.

#include <doctest/doctest.h>

#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <fmt/format.h>

#include <atomic>
#include <fstream>
#include <limits>
#include <thread>

#include "harness.h"

using namespace spec;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

/// A connected socket whose reads and writes give up after 10 s (no test hangs).
tcp::socket connect_to(asio::io_context& io, int port) {
  tcp::socket s(io);
  s.connect({asio::ip::address_v4::loopback(), static_cast<unsigned short>(port)});
  timeval tv{10, 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return s;
}

struct WsClient {
  asio::io_context io;
  websocket::stream<tcp::socket> ws;
  std::string greeting;

  explicit WsClient(int port) : ws(connect_to(io, port)) {
    ws.handshake("127.0.0.1", "/ws");
    greeting = read();
  }
  std::string read() {
    beast::flat_buffer b;
    ws.read(b);
    return beast::buffers_to_string(b.data());
  }
  std::string echo(const std::string& text) {
    ws.text(true);
    ws.write(asio::buffer(text));
    return read();
  }
};

/// The daemon's resident set in bytes (VmRSS).
long rss_bytes(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  long kb = 0;
  while (f >> key)
    if (key == "VmRSS:") {
      f >> kb;
      break;
    }
  return kb * 1024;
}

/// Samples a process's RSS every 10 ms while alive; max() is the peak seen.
class RssSampler {
 public:
  explicit RssSampler(pid_t pid) : pid_(pid), thread_([this] {
    while (!stop_) {
      max_ = std::max(max_.load(), rss_bytes(pid_));
      std::this_thread::sleep_for(10ms);
    }
  }) {}
  ~RssSampler() {
    stop_ = true;
    thread_.join();
  }
  long max() const { return max_; }

 private:
  pid_t pid_;
  std::atomic<bool> stop_{false};
  std::atomic<long> max_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("proxy: a WebSocket echoes through the proxy and stays up until the drain deadline") {
  Site site({{"vA"}, {"vB"}}, {{"drain_timeout_ms", 1500}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1];
  REQUIRE(d.deploy(a).status == 200);
  WsClient old_ws(d.public_port());
  CHECK(old_ws.greeting == "testapp vA");
  CHECK(old_ws.echo("ping") == "ping");
  CHECK(old_ws.echo(std::string(100000, 'x')).size() == 100000);

  auto start = std::chrono::steady_clock::now();
  Http deployed;
  std::jthread deployer([&] { deployed = d.deploy(b); });
  auto s = d.wait_status([](const json& s) { return s["stage"] == "drain"; }, 5s);
  CHECK(s["stage"] == "drain");
  WsClient new_ws(d.public_port());
  CHECK(new_ws.greeting == "testapp vB");  // new connections reach the new version
  CHECK(old_ws.echo("still there") == "still there");  // the old tunnel is up meanwhile
  deployer.join();
  REQUIRE(deployed.status == 200);
  CHECK(std::chrono::steady_clock::now() - start >= 1400ms);  // waited for the tunnel
  beast::error_code ec;
  beast::flat_buffer buf;
  old_ws.ws.read(buf, ec);
  CHECK(ec);  // closed at the drain deadline
  CHECK(new_ws.echo("pong") == "pong");
}

TEST_CASE("upgrade: a WebSocket on the old daemon stays up until drain_timeout_ms; new ones reach the new daemon") {
  Site site({{"vA"}}, {{"drain_timeout_ms", 1500}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  WsClient old_ws(d.public_port());
  CHECK(old_ws.echo("before") == "before");

  const pid_t old_daemon = d.pid();
  const auto start = std::chrono::steady_clock::now();
  Http h = http_post(d.api_port(), "/upgrade", "{}", 60s);
  REQUIRE_MESSAGE(h.status == 200, h.body);
  CHECK(old_ws.echo("still there") == "still there");  // through the old daemon
  WsClient new_ws(d.public_port());
  CHECK(new_ws.greeting == "testapp vA");
  beast::error_code ec;
  beast::flat_buffer buf;
  old_ws.ws.read(buf, ec);  // the old daemon closes it at its drain deadline, then exits
  CHECK(ec);
  CHECK(std::chrono::steady_clock::now() - start >= 1400ms);
  CHECK(d.follow_upgrade(h.json_body()["pid"]) == 0);
  CHECK(d.status()["daemon_pid"] != old_daemon);
  CHECK(new_ws.echo("after") == "after");
}

TEST_CASE("proxy: a 512 MiB upload and download stream through with the proxy's memory flat") {
  constexpr unsigned long long kSize = 512ull << 20;
  AppRepo repo;
  std::string a = repo.commit("vA");
  repo.write_config();
  Daemon d(repo, kProxyMode);
  REQUIRE(d.deploy(a).status == 200);
  http_get(d.public_port(), "/");
  const long before = rss_bytes(d.pid());
  long peak = 0;
  {
    RssSampler sampler(d.pid());
    asio::io_context io;
    tcp::socket s = connect_to(io, d.public_port());

    // Upload, chunked, 64 KiB at a time.
    http::request<http::empty_body> req{http::verb::post, "/upload", 11};
    req.set(http::field::host, "127.0.0.1");
    req.chunked(true);
    http::request_serializer<http::empty_body> sr{req};
    http::write_header(s, sr);
    std::string chunk(64 * 1024, 'u');
    for (unsigned long long sent = 0; sent < kSize; sent += chunk.size())
      asio::write(s, http::make_chunk(asio::buffer(chunk)));
    asio::write(s, http::make_chunk_last());
    beast::flat_buffer b;
    http::response<http::string_body> up;
    http::read(s, b, up);
    REQUIRE(up.result_int() == 200);
    CHECK(json::parse(up.body())["bytes"] == kSize);

    // Download, Content-Length, on the same keep-alive connection.
    http::request<http::empty_body> get{http::verb::get, "/download?bytes=" + std::to_string(kSize), 11};
    get.set(http::field::host, "127.0.0.1");
    http::write(s, get);
    http::response_parser<http::buffer_body> p;
    p.body_limit(std::numeric_limits<std::uint64_t>::max());
    http::read_header(s, b, p);
    CHECK(p.content_length().value_or(0) == kSize);
    unsigned long long got = 0;
    static char buf[1 << 16];
    while (!p.is_done()) {
      p.get().body().data = buf;
      p.get().body().size = sizeof buf;
      beast::error_code ec;
      http::read(s, b, p, ec);
      if (ec && ec != http::error::need_buffer) break;
      got += sizeof buf - p.get().body().size;
    }
    CHECK(got == kSize);
    peak = sampler.max();
  }
  MESSAGE("daemon RSS before " << before / 1024 << " KiB, peak " << peak / 1024 << " KiB");
#ifdef __SANITIZE_ADDRESS__
  constexpr long kBound = 64l << 20;  // ASan's quarantine keeps freed buffers resident
#else
  constexpr long kBound = 16l << 20;
#endif
  CHECK(peak - before < kBound);  // nothing near the 512 MiB was held
  check_clean_stop(d);
}

TEST_CASE("proxy: an app that stalls past proxy_timeout_ms gets 504, and the proxy goes on") {
  Site site({{"vA"}}, {{"proxy_timeout_ms", 300}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  auto start = std::chrono::steady_clock::now();
  auto r = http_get(d.public_port(), "/slow?ms=3000");
  CHECK(r.status == 504);
  CHECK(r.body.find("did not answer in time") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  CHECK(http_get(d.public_port(), "/").status == 200);
}

TEST_CASE("proxy: a body that ends when the app closes is re-framed for keep-alive clients") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  // HTTP/1.1, two pipelined requests: the first answer is chunked, the connection survives.
  auto out = raw_exchange(d.public_port(),
                          "GET /unframed HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(out.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(out.find("Transfer-Encoding: chunked") != std::string::npos);
  CHECK(out.find("unframed body from vA") != std::string::npos);
  CHECK(out.find("hello from vA") != std::string::npos);  // second answer, same connection
  // HTTP/1.0 has no chunks: the proxy closes after the body instead.
  auto t0 = std::chrono::steady_clock::now();
  out = raw_exchange(d.public_port(), "GET /unframed HTTP/1.0\r\nHost: x\r\n\r\n");
  CHECK(out.find("unframed body from vA") != std::string::npos);
  CHECK(out.find("chunked") == std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);  // closed, not left to time out
}

TEST_CASE("proxy: chunked bodies pass with exactly one last chunk, both ways, on reused connections") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  REQUIRE(d.deploy(site.commits[0]).status == 200);
  auto chunked_upload = [](size_t bytes, bool close) {
    std::string req = fmt::format("POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n{}\r\n",
                                  close ? "Connection: close\r\n" : "");
    for (size_t sent = 0; sent < bytes; sent += 300) req += fmt::format("12c\r\n{}\r\n", std::string(300, 'x'));
    return req + "0\r\n\r\n";
  };
  // Three uploads on one client connection: the second and third go over the backend
  // connection the first left in the pool (a doubled last chunk once made the app read
  // "0\r\n\r\n" as its next request, and the next upload there got 502).
  const std::string out =
      raw_exchange(d.public_port(), chunked_upload(900, false) + chunked_upload(900, false) + chunked_upload(900, true));
  size_t oks = 0;
  for (size_t at = 0; (at = out.find("HTTP/1.1 200 OK", at)) != std::string::npos; ++at) ++oks;
  CHECK_MESSAGE(oks == 3, out);
  CHECK(out.find(R"("bytes":900)") != std::string::npos);
  CHECK(out.find("502") == std::string::npos);
  // A chunked answer (SSE), twice on one connection: one last chunk each.
  const std::string events = raw_exchange(
      d.public_port(), "GET /events?n=2&ms=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
                       "GET /events?n=2&ms=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  size_t answers = 0, last_chunks = 0;
  for (size_t at = 0; (at = events.find("HTTP/1.1 200 OK", at)) != std::string::npos; ++at) ++answers;
  for (size_t at = 0; (at = events.find("\r\n0\r\n\r\n", at)) != std::string::npos; ++at) ++last_chunks;
  CHECK_MESSAGE(answers == 2, events);
  CHECK_MESSAGE(last_chunks == 2, events);
}
