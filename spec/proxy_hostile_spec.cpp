// Contract §4.1: what the proxy refuses — request smuggling and framing (RFC 9112 §6–7),
// methods it answers itself, slow headers, too many connections from one address.
// Every refused request must get its 4xx/501 (or a close), never be answered by the app,
// and leave the proxy serving everyone else.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "harness.h"

using namespace spec;

namespace {

/// One raw client connection, optionally from a chosen loopback source address.
class RawConn {
 public:
  RawConn(int port, const char* source = nullptr) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (source) {
      sockaddr_in src{};
      src.sin_family = AF_INET;
      inet_pton(AF_INET, source, &src.sin_addr);
      REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawConn() { close(fd_); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  bool send_all(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  /// Reads until the peer closes or `timeout` passes; `closed` says which.
  std::string read_until_close(std::chrono::milliseconds timeout, bool* closed = nullptr) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        if (closed) *closed = false;
        return out;
      }
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        if (closed) *closed = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
};

/// How many requests the app has read in full on its public port.
long long received(const Daemon& d) {
  auto r = http_get(d.internal_port(), "/received");
  REQUIRE(r.status == 200);
  return std::stoll(r.body);
}

struct Hostile {
  const char* name;
  std::string bytes;
  const char* status;  // the status line the proxy must answer with
};

const std::string kHost = "Host: x\r\n";

std::vector<Hostile> smuggling_table() {
  return {
      {"Transfer-Encoding whose last coding is not chunked",
       "POST /upload HTTP/1.1\r\n" + kHost + "Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "400"},
      {"chunked, then another coding",
       "POST /upload HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", "400"},
      {"a coding before chunked",
       "POST /upload HTTP/1.1\r\n" + kHost + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"},
      {"chunked twice",
       "POST /upload HTTP/1.1\r\n" + kHost +
           "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
      {"Transfer-Encoding in HTTP/1.0",
       "POST /upload HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
      {"Content-Length and Transfer-Encoding",
       "POST /upload HTTP/1.1\r\n" + kHost +
           "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", "400"},
      {"Transfer-Encoding and Content-Length",
       "POST /upload HTTP/1.1\r\n" + kHost +
           "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", "400"},
      {"two different Content-Lengths",
       "POST /upload HTTP/1.1\r\n" + kHost + "Content-Length: 3\r\nContent-Length: 5\r\n\r\nhello", "400"},
      {"two equal Content-Lengths",
       "POST /upload HTTP/1.1\r\n" + kHost + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "400"},
      {"a Content-Length list", "POST /upload HTTP/1.1\r\n" + kHost + "Content-Length: 5, 5\r\n\r\nhello", "400"},
      {"a signed Content-Length", "POST /upload HTTP/1.1\r\n" + kHost + "Content-Length: +5\r\n\r\nhello", "400"},
      {"obs-fold", "GET / HTTP/1.1\r\n" + kHost + "X-Folded: a\r\n b\r\n\r\n", "400"},
      {"obs-fold hiding Transfer-Encoding",
       "POST /upload HTTP/1.1\r\n" + kHost + "X: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
      {"bare LF line endings", "GET / HTTP/1.1\nHost: x\n\n", "400"},
      {"a bare LF inside the header", "GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", "400"},
      {"whitespace before the colon",
       "POST /upload HTTP/1.1\r\n" + kHost + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", "400"},
      {"NUL in a value", std::string("GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n", 35), "400"},
      {"CR in a value", "GET / HTTP/1.1\r\n" + kHost + "X: a\rb\r\n\r\n", "400"},
      {"DEL in a value", "GET / HTTP/1.1\r\n" + kHost + "X: a\x7f" "b\r\n\r\n", "400"},
      {"chunk size overflow",
       "POST /upload HTTP/1.1\r\n" + kHost +
           "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF1\r\nhello\r\n0\r\n\r\n", "400"},
      {"a chunk size in hex with 0x",
       "POST /upload HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", "400"},
      {"an invalid chunk extension",
       "POST /upload HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\n\r\n5;\"x\r\nhello\r\n0\r\n\r\n", "400"},
      {"a chunk extension without a value",
       "POST /upload HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\n\r\n5;a=\r\nhello\r\n0\r\n\r\n", "400"},
      {"a chunk line ended by a bare LF",
       "POST /upload HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", "400"},
      {"chunk data longer than its size",
       "POST /upload HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n", "400"},
      {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", "400"},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "400"},
      {"a body on GET", "GET / HTTP/1.1\r\n" + kHost + "Content-Length: 5\r\n\r\nhello", "400"},
      {"a chunked body on HEAD",
       "HEAD / HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
      {"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "501"},
      {"TRACE", "TRACE / HTTP/1.1\r\n" + kHost + "\r\n", "405"},
      {"a space in the target", "GET /a b HTTP/1.1\r\n" + kHost + "\r\n", "400"},
      {"an HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "400"},
  };
}

}  // namespace

TEST_CASE("proxy: smuggling and framing attacks get 4xx and a close, never the app") {
  Site site({{"vA"}}, json::object(), kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  for (const auto& h : smuggling_table()) {
    const std::string name = h.name;
    CAPTURE(name);
    const long long before = received(d);
    RawConn c(d.public_port());
    REQUIRE(c.send_all(h.bytes));
    bool closed = false;
    const std::string out = c.read_until_close(5s, &closed);
    CHECK_MESSAGE(out.rfind(std::string("HTTP/1.1 ") + h.status, 0) == 0, out);
    CHECK(out.find("\"error\"") != std::string::npos);  // the proxy's answer, not the app's
    CHECK(closed);
    CHECK(received(d) == before);  // no request reached the app in full
    CHECK(http_get(d.public_port(), "/").status == 200);  // everyone else is still served
  }
  // 405 names what is allowed.
  CHECK(raw_exchange(d.public_port(), "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n").find("Allow: GET") !=
        std::string::npos);
  // The well-formed versions of the same requests still reach the app.
  auto ok = raw_exchange(d.public_port(),
                         "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         "Connection: close\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n");
  CHECK_MESSAGE(ok.find("\"bytes\":5") != std::string::npos, ok);
  ok = raw_exchange(d.public_port(), "GET / HTTP/1.0\r\n\r\n");
  CHECK(ok.rfind("HTTP/1.0 200", 0) == 0);
  ok = raw_exchange(d.public_port(), "\r\nGET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                     "Connection: close\r\n\r\n");
  CHECK(ok.rfind("HTTP/1.1 200", 0) == 0);
}

TEST_CASE("proxy: a header trickled in slowly gets 408; an idle keep-alive connection is not cut") {
  Site site({{"vA"}}, {{"proxy_header_timeout_ms", 600}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);

  RawConn slow(d.public_port());
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(slow.send_all("GET / HTTP/1.1\r\n"));
  bool closed = false;
  std::string out;
  for (int i = 0; i < 30 && !closed; ++i) {  // one header line every 100 ms, for up to 3 s
    slow.send_all("X-Line-" + std::to_string(i) + ": a\r\n");
    out += slow.read_until_close(100ms, &closed);
  }
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(closed);
  CHECK_MESSAGE(out.rfind("HTTP/1.1 408", 0) == 0, out);
  CHECK(took >= 500ms);
  CHECK(took < 2500ms);

  // Idle before its first byte for longer than the header timeout: still served.
  RawConn idle(d.public_port());
  std::this_thread::sleep_for(1200ms);
  REQUIRE(idle.send_all("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(idle.read_until_close(5s).rfind("HTTP/1.1 200", 0) == 0);
  CHECK(http_get(d.public_port(), "/").status == 200);
}

TEST_CASE("proxy: one address over proxy_max_conns_per_ip is refused, others are served") {
  Site site({{"vA"}}, {{"proxy_max_conns_per_ip", 4}}, kProxyMode);
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  std::vector<std::unique_ptr<RawConn>> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<RawConn>(d.public_port()));
  std::this_thread::sleep_for(100ms);  // let the proxy accept them

  {
    RawConn over(d.public_port());
    bool closed = false;
    over.send_all("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(over.read_until_close(2s, &closed).empty());
    CHECK(closed);
  }
  {
    RawConn other(d.public_port(), "127.0.0.2");  // another client address
    REQUIRE(other.send_all("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    CHECK(other.read_until_close(5s).rfind("HTTP/1.1 200", 0) == 0);
  }
  // The held connections still work, and closing one makes room again.
  REQUIRE(held[0]->send_all("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(held[0]->read_until_close(5s).rfind("HTTP/1.1 200", 0) == 0);
  held.erase(held.begin());
  std::this_thread::sleep_for(100ms);
  RawConn again(d.public_port());
  REQUIRE(again.send_all("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(again.read_until_close(5s).rfind("HTTP/1.1 200", 0) == 0);
  held.clear();
}

TEST_CASE("config: proxy limits out of range are errors naming the field") {
  AppRepo repo;
  repo.commit("vA");
  repo.write_config({{"proxy_max_conns_per_ip", 20000}});
  auto r = run({slot_machine_bin(), "start", "--config", repo.config_path().string(), "--repo",
                repo.dir().string(), "--data", repo.data_dir().string()},
               repo.home(), {}, 10s);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("\"proxy_max_conns_per_ip\" must be 0-10000") != std::string::npos);
}
