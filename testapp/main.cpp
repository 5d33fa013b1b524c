// testapp: the app the spec suite and the benchmarks deploy. Serves its public routes on
// PORT and its control and health routes on INTERNAL_PORT (one listener when equal).
// Boost.Beast, synchronous, one thread per connection: plain, like many app servers.
//
// Public:   GET /  /headers  /slow?ms=N  /events?n=N&ms=M (SSE)  /download?bytes=N
//           /unframed (a body delimited by closing the connection)
//           POST /upload (counts the streamed body)  GET /ws (WebSocket echo)
// Internal: GET /healthz  /env?key=K  /whoami  /received (requests read in full on PORT)
//           POST /control/{crash,hang,unhealthy,healthy}  /control/log?line=L&times=N
//
// Flags: --start-unhealthy, --boot-delay SECONDS, --ignore-sigterm,
//        --spawn-orphan (start a setsid'd grandchild that sleeps forever).
// VERSION comes from the VERSION file in cwd (the slot), else the VERSION env var.

#include <signal.h>
#include <unistd.h>

#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <string>
#include <thread>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::atomic<bool> healthy{true};
std::atomic<long long> public_received{0};  // requests read in full on PORT (GET /received)

std::string env_or(const char* key, const std::string& fallback) {
  const char* v = std::getenv(key);
  return v ? v : fallback;
}

std::string read_version() {
  std::ifstream f("VERSION");
  std::string v;
  if (f && std::getline(f, v) && !v.empty()) return v;
  return env_or("VERSION", "unknown");
}

const std::string& version() {
  static const std::string v = read_version();
  return v;
}

/// The path and decoded-enough query of a request target (test values need no %-decoding).
struct Target {
  std::string path;
  std::map<std::string, std::string> query;

  explicit Target(std::string_view t) {
    const auto q = t.find('?');
    path = std::string(t.substr(0, q));
    if (q == std::string_view::npos) return;
    std::string_view rest = t.substr(q + 1);
    while (!rest.empty()) {
      const auto amp = rest.find('&');
      const std::string_view kv = rest.substr(0, amp);
      const auto eq = kv.find('=');
      query[std::string(kv.substr(0, eq))] =
          eq == std::string_view::npos ? "" : std::string(kv.substr(eq + 1));
      rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    }
  }
  long long num(const std::string& key, long long fallback) const {
    auto it = query.find(key);
    return it == query.end() ? fallback : std::atoll(it->second.c_str());
  }
};

using Request = http::request_parser<http::buffer_body>;

/// Reads (and counts, with a checksum) whatever body the request has.
std::pair<unsigned long long, unsigned long long> consume_body(tcp::socket& s, beast::flat_buffer& b,
                                                               Request& p) {
  unsigned long long n = 0, sum = 1469598103934665603ULL;  // FNV-1a over the bytes
  static thread_local char buf[65536];
  while (!p.is_done()) {
    p.get().body().data = buf;
    p.get().body().size = sizeof buf;
    beast::error_code ec;
    http::read(s, b, p, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) throw beast::system_error(ec);
    const size_t got = sizeof buf - p.get().body().size;
    for (size_t i = 0; i < got; ++i) sum = (sum ^ static_cast<unsigned char>(buf[i])) * 1099511628211ULL;
    n += got;
  }
  return {n, sum};
}

void reply(tcp::socket& s, const Request& p, http::status status, const std::string& body,
           const std::string& type = "text/plain") {
  http::response<http::string_body> res{status, p.get().version()};
  res.set(http::field::content_type, type);
  res.keep_alive(p.get().keep_alive());
  res.body() = body;
  res.prepare_payload();
  http::write(s, res);
}

/// Sends a chunked response whose chunks come from `next` (empty string: done).
template <class Next>
void reply_chunked(tcp::socket& s, const Request& p, const std::string& type, Next next) {
  http::response<http::empty_body> res{http::status::ok, p.get().version()};
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-cache");
  res.keep_alive(p.get().keep_alive());
  res.chunked(true);
  http::response_serializer<http::empty_body> sr{res};
  http::write_header(s, sr);
  for (std::string chunk = next(); !chunk.empty(); chunk = next())
    asio::write(s, http::make_chunk(asio::buffer(chunk)));
  asio::write(s, http::make_chunk_last());
}

void download(tcp::socket& s, const Request& p, unsigned long long bytes) {
  http::response<http::empty_body> res{http::status::ok, p.get().version()};
  res.set(http::field::content_type, "application/octet-stream");
  res.content_length(bytes);
  res.keep_alive(p.get().keep_alive());
  http::response_serializer<http::empty_body> sr{res};
  http::write_header(s, sr);
  static thread_local char buf[65536];
  for (size_t i = 0; i < sizeof buf; ++i) buf[i] = static_cast<char>('a' + i % 26);
  while (bytes > 0) {  // the a–z pattern restarts every block; receivers only count bytes
    const size_t n = bytes < sizeof buf ? bytes : sizeof buf;
    asio::write(s, asio::buffer(buf, n));
    bytes -= n;
  }
}

/// WebSocket echo: greets with "testapp <version>", then echoes every message.
void websocket(tcp::socket s, const Request& p) {
  beast::websocket::stream<tcp::socket> ws(std::move(s));
  ws.accept(p.get());
  ws.text(true);
  ws.write(asio::buffer("testapp " + version()));
  beast::flat_buffer b;
  for (;;) {
    beast::error_code ec;
    ws.read(b, ec);
    if (ec) return;
    ws.text(ws.got_text());
    ws.write(b.data(), ec);
    if (ec) return;
    b.consume(b.size());
  }
}

enum class Outcome { unhandled, handled, close };

/// Handles one public request.
Outcome handle_public(tcp::socket& s, beast::flat_buffer& b, Request& p, const Target& t) {
  const auto method = p.get().method();
  if (method == http::verb::post && t.path == "/upload") {
    auto [n, sum] = consume_body(s, b, p);
    ++public_received;
    reply(s, p, http::status::ok, nlohmann::json{{"bytes", n}, {"fnv1a", std::to_string(sum)}}.dump(),
          "application/json");
    return Outcome::handled;
  }
  consume_body(s, b, p);
  ++public_received;  // before any answer, so a client that has one sees it counted
  if (method != http::verb::get && !(method == http::verb::head && t.path == "/page")) return Outcome::unhandled;
  if (t.path == "/") {
    reply(s, p, http::status::ok,
          "hello from " + version() + " (slot " + env_or("SLOT_MACHINE_SLOT", "?") + ", pid " +
              std::to_string(getpid()) + ")\n");
  } else if (t.path == "/headers") {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& f : p.get()) j[std::string(f.name_string())] = std::string(f.value());
    reply(s, p, http::status::ok, j.dump(), "application/json");
  } else if (t.path == "/slow") {
    const auto ms = t.num("ms", 1000);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    reply(s, p, http::status::ok, "slow done after " + std::to_string(ms) + " ms\n");
  } else if (t.path == "/events") {  // Server-Sent Events, each flushed as it is made
    const long long n = t.num("n", 3), ms = t.num("ms", 200);
    long long sent = 0;
    reply_chunked(s, p, "text/event-stream", [&]() -> std::string {
      if (sent >= n) return "";
      if (sent > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      return "data: event " + std::to_string(sent++) + "\n\n";
    });
  } else if (t.path == "/page") {  // ?bytes=N of text; type=, cache= (Cache-Control), encoding= (Content-Encoding)
    std::string body;
    const auto bytes = static_cast<size_t>(t.num("bytes", 4096));
    while (body.size() < bytes) body += "<p>page from " + version() + ", line " + std::to_string(body.size()) + "</p>\n";
    body.resize(bytes);
    auto q = [&](const char* k, const char* fallback) {
      auto it = t.query.find(k);
      return it == t.query.end() ? std::string(fallback) : it->second;
    };
    http::response<http::string_body> res{http::status::ok, p.get().version()};
    res.set(http::field::content_type, q("type", "text/html"));
    if (const auto c = q("cache", ""); !c.empty()) res.set(http::field::cache_control, c);
    if (const auto e = q("encoding", ""); !e.empty()) res.set(http::field::content_encoding, e);
    res.set(http::field::etag, "\"page-" + std::to_string(bytes) + "\"");
    res.keep_alive(p.get().keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    if (p.get().method() == http::verb::head) {
      http::response_serializer<http::string_body> sr{res};
      http::write_header(s, sr);
    } else {
      http::write(s, res);
    }
  } else if (t.path == "/download") {
    download(s, p, static_cast<unsigned long long>(t.num("bytes", 0)));
  } else if (t.path == "/unframed") {  // old-style: no length, no chunks; the body ends at close
    asio::write(s, asio::buffer("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                "Connection: close\r\n\r\nunframed body from " +
                                version() + "\n"));
    return Outcome::close;
  } else {
    return Outcome::unhandled;
  }
  return Outcome::handled;
}

Outcome handle_internal(tcp::socket& s, beast::flat_buffer& b, Request& p, const Target& t) {
  consume_body(s, b, p);
  const bool post = p.get().method() == http::verb::post;
  if (!post && t.path == "/healthz") {
    reply(s, p, healthy ? http::status::ok : http::status::service_unavailable,
          healthy ? "ok\n" : "unhealthy\n");
  } else if (post && t.path == "/control/crash") {
    reply(s, p, http::status::ok, "crashing\n");
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      _exit(1);
    }).detach();
  } else if (post && t.path == "/control/hang") {
    signal(SIGTERM, SIG_IGN);
    reply(s, p, http::status::ok, "ignoring SIGTERM from now on\n");
  } else if (post && t.path == "/control/unhealthy") {
    healthy = false;
    reply(s, p, http::status::ok, "unhealthy\n");
  } else if (post && t.path == "/control/log") {  // prints ?line= (repeated ?times=) to stdout
    auto it = t.query.find("line");
    const std::string line = it == t.query.end() ? "log line" : it->second;
    for (long long i = 0, n = t.num("times", 1); i < n; ++i) std::cout << line << "\n";
    std::cout << std::flush;
    reply(s, p, http::status::ok, "logged\n");
  } else if (post && t.path == "/control/healthy") {
    healthy = true;
    reply(s, p, http::status::ok, "healthy\n");
  } else if (!post && t.path == "/env") {
    auto it = t.query.find("key");
    const char* v = it == t.query.end() ? nullptr : std::getenv(it->second.c_str());
    if (v)
      reply(s, p, http::status::ok, v);
    else
      reply(s, p, http::status::not_found, "unset\n");
  } else if (!post && t.path == "/received") {
    reply(s, p, http::status::ok, std::to_string(public_received.load()));
  } else if (!post && t.path == "/whoami") {
    nlohmann::json j{{"pid", getpid()},
                     {"pgid", getpgrp()},
                     {"slot", env_or("SLOT_MACHINE_SLOT", "")},
                     {"commit", env_or("SLOT_MACHINE_COMMIT", "")},
                     {"version", version()}};
    reply(s, p, http::status::ok, j.dump(), "application/json");
  } else {
    return Outcome::unhandled;
  }
  return Outcome::handled;
}

/// One connection: requests until either side closes.
void serve(tcp::socket s, bool is_public, bool is_internal) {
  beast::flat_buffer b;
  try {
    for (;;) {
      Request p;
      p.body_limit(std::numeric_limits<std::uint64_t>::max());
      http::read_header(s, b, p);
      const auto target = p.get().target();
      const Target t(std::string_view(target.data(), target.size()));
      if (is_public && beast::websocket::is_upgrade(p.get()) && t.path == "/ws")
        return websocket(std::move(s), p);
      Outcome o = Outcome::unhandled;
      if (is_public) o = handle_public(s, b, p, t);
      if (o == Outcome::unhandled && is_internal) o = handle_internal(s, b, p, t);
      if (o == Outcome::unhandled) reply(s, p, http::status::not_found, "not found\n");
      if (o == Outcome::close || !p.get().keep_alive()) {
        beast::error_code ec;
        s.shutdown(tcp::socket::shutdown_send, ec);
        return;
      }
    }
  } catch (const std::exception&) {
    // The peer went away or sent garbage: drop the connection, as app servers do.
  }
}

void listen(tcp::acceptor& acc, int port) {
  // Like a typical app server: SO_REUSEADDR only (SO_REUSEPORT would let two copies
  // share a port and hide a drain that did not happen).
  tcp::endpoint ep(asio::ip::address_v4::loopback(), static_cast<unsigned short>(port));
  beast::error_code ec;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "testapp: cannot bind 127.0.0.1:" << port << ": " << ec.message() << "\n";
    std::exit(1);
  }
}

void accept_loop(asio::io_context& io, tcp::acceptor& acc, bool is_public, bool is_internal) {
  for (;;) {
    tcp::socket s(io);
    beast::error_code ec;
    acc.accept(s, ec);
    if (ec) continue;
    s.set_option(tcp::no_delay(true), ec);
    std::thread(serve, std::move(s), is_public, is_internal).detach();
  }
}

/// Forks a grandchild that leaves the process group (setsid) and sleeps forever:
/// what a daemonizing helper does. slot-machine must still clean it up.
void spawn_orphan() {
  pid_t child = fork();
  if (child == 0) {
    setsid();
    if (fork() == 0) {
      execl("/bin/sleep", "sleep", "3600", static_cast<char*>(nullptr));
      _exit(127);
    }
    _exit(0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool start_unhealthy = false, ignore_sigterm = false, orphan = false;
  double boot_delay = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--start-unhealthy") start_unhealthy = true;
    else if (a == "--ignore-sigterm") ignore_sigterm = true;
    else if (a == "--spawn-orphan") orphan = true;
    else if (a == "--boot-delay" && i + 1 < argc) boot_delay = std::atof(argv[++i]);
    else {
      std::cerr << "testapp: unknown argument " << a << "\n";
      return 2;
    }
  }
  if (ignore_sigterm) signal(SIGTERM, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  healthy = !start_unhealthy;
  if (orphan) spawn_orphan();

  const int port = std::atoi(env_or("PORT", "3000").c_str());
  const int internal = std::atoi(env_or("INTERNAL_PORT", std::to_string(port)).c_str());
  std::cout << "testapp " << version() << " pid " << getpid() << " booting (PORT=" << port
            << " INTERNAL_PORT=" << internal << ")" << std::endl;
  if (boot_delay > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(boot_delay * 1000)));

  asio::io_context io;
  tcp::acceptor pub(io), priv(io);
  listen(pub, port);
  if (internal != port) listen(priv, internal);
  std::cout << "testapp " << version() << " listening" << std::endl;
  if (internal != port) std::thread(accept_loop, std::ref(io), std::ref(priv), false, true).detach();
  accept_loop(io, pub, true, internal == port);
}
