#include "proxy/proxy.h"

#include <utility>  // before Asio: its awaitable.hpp needs std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <fmt/format.h>

#include <future>
#include <limits>
#include <optional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace sm::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using boost::system::error_code;

// One concrete executor type throughout, instead of Asio's type-erased default: the
// erasure costs a few percent of the proxy's CPU per request.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Executor>;

/// A socket with a deadline for its pending operation, like beast::basic_stream's, but
/// enforced by one watchdog per client connection that looks every tick (see Watched),
/// not by a timer per operation: those timers were ~13% of the proxy's CPU per request.
class TimedSocket {
 public:
  using executor_type = Executor;
  explicit TimedSocket(Socket s) : sock_(std::move(s)) {}
  explicit TimedSocket(Executor ex) : sock_(ex) {}
  executor_type get_executor() { return sock_.get_executor(); }
  Socket& socket() { return sock_; }
  Socket release_socket() { return std::move(sock_); }

  void expires_after(std::chrono::steady_clock::duration d) { deadline_ = Clock::now() + d; }
  void expires_never() { deadline_ = Clock::time_point::max(); }
  /// Called by the watchdog: cancels the pending operation once the deadline passed.
  void check(Clock::time_point now) {
    if (now < deadline_) return;
    deadline_ = Clock::time_point::max();
    timed_out_ = true;
    error_code ignore;
    sock_.cancel(ignore);
  }
  /// `ec`, or beast::error::timeout when the operation was cancelled by its deadline.
  error_code why(error_code ec) {
    if (ec == asio::error::operation_aborted && timed_out_) ec = beast::error::timeout;
    timed_out_ = false;
    return ec;
  }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& b, Token&& t) {
    return sock_.async_read_some(b, std::forward<Token>(t));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& b, Token&& t) {
    return sock_.async_write_some(b, std::forward<Token>(t));
  }

 private:
  Socket sock_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timed_out_ = false;
};
using Stream = TimedSocket;

/// What a connection's watchdog watches: the client socket and, while a request is
/// forwarded, the backend connection it uses. Shared between the session and the
/// watchdog, which stops once `done` (the session has ended).
struct Watched {
  explicit Watched(Executor ex) : timer(ex) {}
  Timer timer;
  Stream* client = nullptr;
  Stream* backend = nullptr;
  bool done = false;
};

/// Points `w.backend` at a backend stream for as long as it lives.
struct WatchBackend {
  Watched& w;
  WatchBackend(Watched& watched, Stream& s) : w(watched) { w.backend = &s; }
  ~WatchBackend() { w.backend = nullptr; }
};
template <class T>
using awaitable = asio::awaitable<T, Executor>;
constexpr asio::use_awaitable_t<Executor> use_awaitable;

namespace {

constexpr auto kClientIdle = std::chrono::seconds(75);
constexpr auto kConnectTimeout = std::chrono::seconds(5);
constexpr size_t kHeaderLimit = 16 * 1024;
constexpr size_t kPoolLimit = 64;
constexpr size_t kBodyChunk = 32 * 1024;
// Bodies stream, so they need no limit. Not boost::none: Boost 1.74 compares the
// Content-Length against the empty optional and rejects every body.
constexpr std::uint64_t kNoBodyLimit = std::numeric_limits<std::uint64_t>::max();

auto redirect(error_code& ec) { return asio::redirect_error(use_awaitable, ec); }

/// One idle-able connection to an app, with the bytes read past the last response.
struct BackendConn {
  explicit BackendConn(Executor ex) : stream(ex) {}
  Stream stream;
  beast::flat_buffer buffer;
};

/// An app the proxy forwards to: its port, requests in flight, idle keep-alive connections.
struct Backend {
  explicit Backend(int p) : port(p) {}
  const int port;
  std::atomic<int> in_flight{0};
  std::atomic<int> tunnels{0};                      // open Upgrade tunnels
  std::vector<std::unique_ptr<BackendConn>> idle;  // event loop thread only
  std::vector<std::weak_ptr<Socket>> tunnel_sockets;  // event loop thread only
};

/// Owns one count of a backend's in_flight (taken under the routing lock, so a drain
/// that starts after a switch sees every request routed before it); gives it back once.
class InFlight {
 public:
  explicit InFlight(std::shared_ptr<Backend> b) : b_(std::move(b)) {}
  ~InFlight() { release(); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  void release() {
    if (b_) --b_->in_flight;
    b_.reset();
  }

 private:
  std::shared_ptr<Backend> b_;
};

/// Streams one message (header, then body as it arrives) from `in` to `out`.
/// The parser has already read the header.
/// `read_timeout` bounds each read from `in` (none: wait as long as the sender likes, as
/// Server-Sent Events need); each write to `out` is bounded by kClientIdle.
template <bool isRequest>
awaitable<error_code> relay(Stream& out, Stream& in, beast::flat_buffer& in_buf,
                            http::parser<isRequest, http::buffer_body>& p,
                            std::optional<std::chrono::milliseconds> read_timeout) {
  error_code ec;
  http::serializer<isRequest, http::buffer_body> sr{p.get()};
  // The header goes out with the first piece of body when that has already arrived (one
  // write, not two); on its own when the body is still to come, so the peer sees it now.
  if (!p.is_done() && in_buf.size() == 0) {
    out.expires_after(kClientIdle);
    co_await http::async_write_header(out, sr, redirect(ec));
    ec = out.why(ec);
    if (ec) co_return ec;
  }
  // Beast reads only as much as the buffer's free capacity (512 bytes for a fresh
  // buffer), so give it room while a body streams and take it back afterwards.
  // The body buffer is allocated only when there is a body (not in the coroutine frame,
  // which every request pays for).
  // A small body that has fully arrived with the header (the common case) needs neither.
  size_t chunk = kBodyChunk;
  bool grown = false;
  if (const auto left = p.content_length_remaining(); left && *left < chunk)
    chunk = static_cast<size_t>(*left);
  if (!p.is_done() && chunk > in_buf.size()) {
    in_buf.reserve(kBodyChunk);
    grown = true;
  }
  struct Shrink {
    beast::flat_buffer& b;
    bool grown;
    ~Shrink() {
      if (grown) b.shrink_to_fit();
    }
  } shrink{in_buf, grown};
  std::unique_ptr<char[]> body_buf(p.is_done() ? nullptr : new char[chunk]);
  char* const buf = body_buf.get();
  do {
    if (!p.is_done()) {
      p.get().body().data = buf;
      p.get().body().size = chunk;
      if (read_timeout)
        in.expires_after(*read_timeout);
      else
        in.expires_never();
      co_await http::async_read_some(in, in_buf, p, redirect(ec));
      ec = in.why(ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return ec;
      const size_t got = chunk - p.get().body().size;
      if (got == 0 && !p.is_done()) continue;  // only framing was parsed
      p.get().body().size = got;
      p.get().body().data = buf;
      p.get().body().more = !p.is_done();
    } else {
      p.get().body().data = nullptr;
      p.get().body().size = 0;
      p.get().body().more = false;
    }
    out.expires_after(kClientIdle);
    co_await http::async_write(out, sr, redirect(ec));
    ec = out.why(ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return ec;
  } while (!p.is_done() && !sr.is_done());
  co_return ec;
}

awaitable<void> write_error(Stream& s, http::status status, const std::string& why) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::connection, "close");
  res.body() = fmt::format("{{\"error\":\"{}\"}}\n", why);
  res.prepare_payload();
  error_code ec;
  s.expires_after(std::chrono::seconds(5));
  co_await http::async_write(s, res, redirect(ec));
  s.expires_never();
  s.socket().shutdown(Socket::shutdown_send, ec);
}

/// Copies bytes from `from` to `to` until either side closes; then closes both.
awaitable<void> pipe(std::shared_ptr<Socket> from, std::shared_ptr<Socket> to) {
  char buf[kBodyChunk];
  for (;;) {
    error_code ec;
    size_t n = co_await from->async_read_some(asio::buffer(buf), redirect(ec));
    if (ec) break;
    co_await asio::async_write(*to, asio::buffer(buf, n), redirect(ec));
    if (ec) break;
  }
  error_code ignore;
  from->close(ignore);
  to->close(ignore);
}

}  // namespace

struct Proxy::Impl {
  explicit Impl(Options o) : opts(std::move(o)), work(asio::make_work_guard(io)) {
    thread = std::thread([this] { io.run(); });
  }
  ~Impl() {
    asio::post(io, [this] {
      error_code ec;
      for (auto& a : acceptors) a->close(ec);
      io.stop();
    });
    thread.join();
  }

  Options opts;
  size_t connections = 0;  // loop thread only; declared before io, which outlives sessions
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;
  std::vector<std::unique_ptr<Acceptor>> acceptors;  // loop thread after start

  mutable std::mutex mu;  // guards the routing table below
  std::shared_ptr<Backend> public_backend, internal_backend;
  std::vector<std::weak_ptr<Backend>> known;  // every backend, for in_flight()/wait_idle()

  /// Sums `what` over every backend on `port`.
  int count(int port, std::atomic<int> Backend::*what) const;

  /// The backend new requests go to, with one in_flight count taken for the caller.
  std::shared_ptr<Backend> route(bool internal) {
    std::lock_guard lock(mu);
    auto b = internal ? internal_backend : public_backend;
    if (b) ++b->in_flight;
    return b;
  }

  void listen(const std::string& host, int port, bool internal) {
    auto acc = std::make_unique<Acceptor>(io.get_executor());
    tcp::endpoint ep(asio::ip::make_address(host), static_cast<unsigned short>(port));
    error_code ec;
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(Acceptor::reuse_address(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      throw std::runtime_error(fmt::format("proxy cannot listen on {}:{}: {}; is another server "
                                           "using \"{}\"?",
                                           host, port, ec.message(),
                                           internal ? "internal_port" : "port"));
    asio::co_spawn(io, accept_loop(*acc, internal), asio::detached);
    acceptors.push_back(std::move(acc));
  }

  awaitable<void> accept_loop(Acceptor& acc, bool internal) {
    for (;;) {
      error_code ec;
      Socket sock = co_await acc.async_accept(redirect(ec));
      if (ec == asio::error::operation_aborted || !acc.is_open()) co_return;
      if (ec) {  // EMFILE and friends: back off instead of spinning
        Timer t(io.get_executor(), std::chrono::milliseconds(50));
        co_await t.async_wait(redirect(ec));
        continue;
      }
      if (connections >= opts.max_connections) continue;  // closes `sock`
      sock.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(io, session(std::move(sock), internal), asio::detached);
    }
  }

  /// One client connection: read a request header, route it, forward it; repeat while
  /// both sides keep the connection alive.
  awaitable<void> session(Socket sock, bool internal) {
    ++connections;
    struct Count {
      size_t& n;
      ~Count() { --n; }
    } count{connections};
    error_code ec;
    const std::string peer = sock.remote_endpoint(ec).address().to_string();
    Stream client(std::move(sock));
    auto watched = std::make_shared<Watched>(io.get_executor());
    watched->client = &client;
    struct StopWatching {
      Watched& w;
      ~StopWatching() {
        w.done = true;
        w.timer.cancel();
      }
    } stop_watching{*watched};
    asio::co_spawn(io, watchdog(watched), asio::detached);
    beast::flat_buffer cbuf;
    for (;;) {
      http::request_parser<http::buffer_body> req;
      req.header_limit(kHeaderLimit);
      req.body_limit(kNoBodyLimit);
      client.expires_after(kClientIdle);
      co_await http::async_read_header(client, cbuf, req, redirect(ec));
      ec = client.why(ec);
      if (ec == http::error::header_limit) {
        co_await write_error(client, http::status::request_header_fields_too_large,
                             "request header too large");
        co_return;
      }
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == beast::error::timeout || ec == asio::error::connection_reset ||
          ec == asio::error::operation_aborted)
        co_return;
      if (ec) {
        co_await write_error(client, http::status::bad_request, "malformed request");
        co_return;
      }
      auto backend = route(internal);
      InFlight counted(backend);
      if (!backend) {
        co_await write_error(client, http::status::service_unavailable, "no app is live");
        co_return;
      }
      add_forwarded(req.get(), peer);
      if (beast::websocket::is_upgrade(req.get())) {
        counted.release();  // a tunnel is counted in Backend::tunnels instead
        co_await tunnel(client, cbuf, req, backend, *watched);
        co_return;
      }
      const bool again = co_await forward(client, cbuf, req, *backend, req.get().keep_alive(), *watched);
      counted.release();
      if (!again) co_return;
    }
  }

  /// Every tick, times out whatever the session is waiting for past its deadline.
  awaitable<void> watchdog(std::shared_ptr<Watched> w) {
    const auto tick = std::clamp<std::chrono::steady_clock::duration>(opts.backend_timeout / 4,
                                                                      std::chrono::milliseconds(10),
                                                                      std::chrono::seconds(1));
    for (;;) {
      error_code ec;
      w->timer.expires_after(tick);
      co_await w->timer.async_wait(redirect(ec));
      if (w->done) co_return;
      const auto now = Clock::now();
      if (w->client) w->client->check(now);
      if (w->backend) w->backend->check(now);
    }
  }

  static void add_forwarded(http::request<http::buffer_body>& m, const std::string& peer) {
    auto xff = m["X-Forwarded-For"];
    m.set("X-Forwarded-For",
          xff.empty() ? peer : std::string(xff) + ", " + peer);
    if (m["X-Forwarded-Proto"].empty()) m.set("X-Forwarded-Proto", "http");
    if (m["X-Forwarded-Host"].empty() && !m[http::field::host].empty())
      m.set("X-Forwarded-Host", m[http::field::host]);
    m.erase(http::field::proxy_connection);
  }

  awaitable<std::unique_ptr<BackendConn>> connect(int port, Watched& w) {
    auto c = std::make_unique<BackendConn>(io.get_executor());
    error_code ec;
    WatchBackend watching(w, c->stream);
    c->stream.expires_after(kConnectTimeout);
    co_await c->stream.socket().async_connect(tcp::endpoint(asio::ip::address_v4::loopback(),
                                                            static_cast<unsigned short>(port)),
                                              redirect(ec));
    c->stream.expires_never();
    if (c->stream.why(ec)) co_return nullptr;
    c->stream.socket().set_option(tcp::no_delay(true), ec);
    co_return c;
  }

  /// Sends the request to the backend and streams the response back. Returns whether
  /// the client connection stays open for another request.
  awaitable<bool> forward(Stream& client, beast::flat_buffer& cbuf,
                          http::request_parser<http::buffer_body>& req, Backend& backend,
                          bool client_keep_alive, Watched& watched) {
    auto& msg = req.get();
    const bool no_body = req.is_done();
    const bool head = msg.method() == http::verb::head;
    msg.keep_alive(true);  // to the backend: reuse the connection
    error_code ec;
    if (beast::iequals(msg[http::field::expect], "100-continue")) {
      // Answer it here: the body then streams straight through, and the app sends no
      // interim response that could be mistaken for the final one.
      msg.erase(http::field::expect);
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      client.expires_after(kClientIdle);
      co_await asio::async_write(client, asio::buffer(kContinue), redirect(ec));
      if (client.why(ec)) co_return false;
    }
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<BackendConn> conn;
      bool reused = false;
      if (!backend.idle.empty()) {
        conn = std::move(backend.idle.back());
        backend.idle.pop_back();
        reused = true;
      } else {
        conn = co_await connect(backend.port, watched);
      }
      if (!conn) {
        co_await write_error(client, http::status::bad_gateway, "the app is not reachable");
        co_return false;
      }
      WatchBackend watching(watched, conn->stream);
      ec = co_await relay<true>(conn->stream, client, cbuf, req,
                                std::chrono::duration_cast<std::chrono::milliseconds>(kClientIdle));
      // An idle connection the app closed: retry on a fresh one while nothing was consumed.
      if (ec && reused && no_body && attempt == 0) continue;
      if (ec) {
        co_await write_error(client, http::status::bad_gateway, "sending the request to the app failed");
        co_return false;
      }
      std::optional<http::response_parser<http::buffer_body>> parsed;
      for (;;) {  // skip interim 1xx responses (but not 101, which is the answer)
        parsed.emplace();
        parsed->body_limit(kNoBodyLimit);
        parsed->header_limit(64 * 1024);
        if (head) parsed->skip(true);
        conn->stream.expires_after(opts.backend_timeout);
        co_await http::async_read_header(conn->stream, conn->buffer, *parsed, redirect(ec));
        ec = conn->stream.why(ec);
        conn->stream.expires_never();
        const unsigned code = ec ? 0 : parsed->get().result_int();
        if (code < 100 || code >= 200 || code == 101) break;
      }
      auto& res = *parsed;
      if (ec && reused && no_body && attempt == 0 &&
          (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
           ec == asio::error::eof))
        continue;
      if (ec == beast::error::timeout) {
        co_await write_error(client, http::status::gateway_timeout, "the app did not answer in time");
        co_return false;
      }
      if (ec) {
        co_await write_error(client, http::status::bad_gateway, "the app closed the connection");
        co_return false;
      }
      const bool backend_keep_alive = res.get().keep_alive();
      bool keep = client_keep_alive;
      if (!res.is_done() && !res.get().has_content_length() && !res.get().chunked()) {
        // The body ends when the app closes: re-frame it for an HTTP/1.1 client, else close.
        if (msg.version() >= 11)
          res.get().chunked(true);
        else
          keep = false;
      }
      res.get().keep_alive(keep);
      ec = co_await relay<false>(client, conn->stream, conn->buffer, res, std::nullopt);
      if (ec) co_return false;  // header already sent: all we can do is close
      if (backend_keep_alive && backend.idle.size() < kPoolLimit) {
        conn->stream.expires_never();
        backend.idle.push_back(std::move(conn));
      }
      co_return keep;
    }
  }

  /// Upgrade (WebSocket): send the request header, then copy bytes both ways.
  awaitable<void> tunnel(Stream& client, beast::flat_buffer& cbuf,
                         http::request_parser<http::buffer_body>& req,
                         std::shared_ptr<Backend> backend, Watched& watched) {
    auto conn = co_await connect(backend->port, watched);
    if (!conn) {
      co_await write_error(client, http::status::bad_gateway, "the app is not reachable");
      co_return;
    }
    error_code ec;
    req.get().body().data = nullptr;
    req.get().body().size = 0;
    req.get().body().more = false;
    http::serializer<true, http::buffer_body> sr{req.get()};
    co_await http::async_write(conn->stream, sr, redirect(ec));
    if (ec == http::error::need_buffer) ec = {};
    if (!ec && cbuf.size())  // bytes the client sent after the header
      co_await asio::async_write(conn->stream.socket(), cbuf.data(), redirect(ec));
    if (!ec && conn->buffer.size())
      co_await asio::async_write(client.socket(), conn->buffer.data(), redirect(ec));
    if (ec) co_return;
    watched.client = nullptr;  // a tunnel has no deadlines
    client.expires_never();
    conn->stream.expires_never();
    auto a = std::make_shared<Socket>(client.release_socket());
    auto b = std::make_shared<Socket>(conn->stream.release_socket());
    ++backend->tunnels;
    struct Open {
      Backend& b;
      ~Open() { --b.tunnels; }
    } open{*backend};
    std::erase_if(backend->tunnel_sockets, [](const auto& w) { return w.expired(); });
    backend->tunnel_sockets.push_back(a);
    asio::co_spawn(io, pipe(b, a), asio::detached);
    co_await pipe(a, b);
  }

  /// Closes every tunnel to an app on `port` (loop thread).
  void close_tunnels(int port) {
    std::vector<std::shared_ptr<Backend>> backends;
    {
      std::lock_guard lock(mu);
      for (const auto& w : known)
        if (auto b = w.lock(); b && b->port == port) backends.push_back(std::move(b));
    }
    for (auto& b : backends)
      for (auto& w : b->tunnel_sockets)
        if (auto s = w.lock()) {
          error_code ignore;
          s->shutdown(Socket::shutdown_both, ignore);
          s->close(ignore);
        }
  }
};

Proxy::Proxy(Options opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
Proxy::~Proxy() = default;

void Proxy::switch_to(int port, int internal_port) {
  auto pub = std::make_shared<Backend>(port);
  auto internal = std::make_shared<Backend>(internal_port);
  bool first;
  {
    std::lock_guard lock(impl_->mu);
    first = !impl_->public_backend;
    impl_->public_backend = pub;
    impl_->internal_backend = internal;
    impl_->known.push_back(pub);
    impl_->known.push_back(internal);
    std::erase_if(impl_->known, [](const auto& w) { return w.expired(); });
  }
  if (!first) return;
  std::promise<void> bound;
  asio::post(impl_->io, [&] {
    try {
      impl_->listen(impl_->opts.public_bind, impl_->opts.public_port, false);
      if (impl_->opts.internal_port != impl_->opts.public_port)
        impl_->listen("127.0.0.1", impl_->opts.internal_port, true);
      bound.set_value();
    } catch (...) {
      bound.set_exception(std::current_exception());
    }
  });
  bound.get_future().get();
}

int Proxy::Impl::count(int port, std::atomic<int> Backend::*what) const {
  std::lock_guard lock(mu);
  int n = 0;
  for (const auto& w : known)
    if (auto b = w.lock(); b && b->port == port) n += (*b).*what;
  return n;
}

int Proxy::in_flight(int port) const { return impl_->count(port, &Backend::in_flight); }

int Proxy::tunnels(int port) const { return impl_->count(port, &Backend::tunnels); }

void Proxy::wait_idle(int port, Clock::time_point deadline) {
  while ((in_flight(port) > 0 || tunnels(port) > 0) && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (tunnels(port) == 0) return;
  std::promise<void> closed;
  asio::post(impl_->io, [&] {
    impl_->close_tunnels(port);
    closed.set_value();
  });
  closed.get_future().get();
}

}  // namespace sm::proxy
