#include "proxy/proxy.h"

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

#include "proxy/relay.h"
#include "proxy/request_checks.h"

namespace sm::proxy {

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(5);
constexpr size_t kHeaderLimit = 16 * 1024;
constexpr size_t kPoolLimit = 64;
// Bodies stream, so they need no limit. Not boost::none: Boost 1.74 compares the
// Content-Length against the empty optional and rejects every body.
constexpr std::uint64_t kNoBodyLimit = std::numeric_limits<std::uint64_t>::max();
// What 405 answers name: the methods the proxy forwards (the app may allow fewer).
constexpr const char* kAllow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// Whether `ec` says the bytes a client sent broke the HTTP grammar (a bad chunk size or
/// extension), as opposed to the client leaving or stalling.
bool is_malformed(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_chunk).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

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
  std::map<asio::ip::address, size_t> per_ip;  // open connections per client address (loop thread)
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
      const auto peer = sock.remote_endpoint(ec).address();
      if (ec) continue;  // already gone
      auto& from_peer = per_ip[peer];
      if (opts.max_conns_per_ip && from_peer >= opts.max_conns_per_ip) {
        if (from_peer == 0) per_ip.erase(peer);
        continue;  // refused: closes `sock`; other addresses are not affected
      }
      ++from_peer;
      sock.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(io, session(std::move(sock), peer, internal), asio::detached);
    }
  }

  /// One client connection: read a request header, route it, forward it; repeat while
  /// both sides keep the connection alive.
  awaitable<void> session(Socket sock, asio::ip::address peer_addr, bool internal) {
    ++connections;
    struct Count {
      Impl& self;
      asio::ip::address peer;
      ~Count() {
        --self.connections;
        if (auto it = self.per_ip.find(peer); it != self.per_ip.end() && --it->second == 0)
          self.per_ip.erase(it);
      }
    } count{*this, peer_addr};
    const std::string peer = peer_addr.to_string();
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
      if (auto refused = co_await read_request_header(client, cbuf, req)) {
        if (refused->status)
          co_await write_error(client, static_cast<http::status>(refused->status),
                               refused->reason, refused->status == 405 ? kAllow : nullptr);
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

  /// Reads the next request header into `req`: waits up to kClientIdle for its first
  /// byte, then up to the header timeout for the rest, and checks it (request_checks.h).
  /// nullopt: forward it. A Refusal with status 0: close without an answer (the client
  /// left, or was idle); otherwise answer it and close.
  awaitable<std::optional<Refusal>> read_request_header(Stream& client, beast::flat_buffer& cbuf,
                                                        http::request_parser<http::buffer_body>& req) {
    error_code ec;
    HeaderScan scan;
    size_t scanned = 0;
    bool started = cbuf.size() > 0;
    if (started) client.expires_after(opts.header_timeout);
    for (;;) {
      const auto* data = static_cast<const char*>(cbuf.data().data());
      scan = scan_header(std::string_view(data, cbuf.size()), scanned);
      scanned = cbuf.size();
      if (scan.obs_fold) co_return Refusal{400, "obs-fold (a header line continued) is not accepted"};
      if (scan.end) break;
      if (cbuf.size() >= kHeaderLimit) co_return Refusal{431, "request header too large"};
      if (!started) client.expires_after(kClientIdle);
      const size_t n = co_await client.async_read_some(cbuf.prepare(kHeaderLimit - cbuf.size()),
                                                       redirect(ec));
      ec = client.why(ec);
      if (ec == beast::error::timeout && started)
        co_return Refusal{408, "the request header took too long"};
      if (ec) co_return Refusal{0, ""};
      cbuf.commit(n);
      if (!started) {
        started = true;
        client.expires_after(opts.header_timeout);
      }
    }
    cbuf.consume(scan.skip);
    // The whole header is buffered: this parses it without reading.
    co_await http::async_read_header(client, cbuf, req, redirect(ec));
    ec = client.why(ec);
    if (ec == http::error::header_limit) co_return Refusal{431, "request header too large"};
    if (ec) co_return Refusal{400, "malformed request"};
    co_return check_request(req.get().base(), req.is_done());
  }

  /// Every tick, times out whatever the session is waiting for past its deadline.
  awaitable<void> watchdog(std::shared_ptr<Watched> w) {
    const auto shortest = std::min<std::chrono::steady_clock::duration>(opts.backend_timeout,
                                                                        opts.header_timeout);
    const auto tick = std::clamp<std::chrono::steady_clock::duration>(shortest / 4,
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
      const Relayed sent = co_await relay<true>(
          conn->stream, client, cbuf, req,
          std::chrono::duration_cast<std::chrono::milliseconds>(kClientIdle));
      if (sent.ec && sent.reading) {  // the client's side: the app's connection is spoilt
        if (is_malformed(sent.ec))
          co_await write_error(client, http::status::bad_request, "malformed request body");
        co_return false;  // a client that left or stalled gets no answer
      }
      // An idle connection the app closed: retry on a fresh one while nothing was consumed.
      if (sent.ec && reused && no_body && attempt == 0) continue;
      if (sent.ec) {
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
      if ((co_await relay<false>(client, conn->stream, conn->buffer, res, std::nullopt)).ec)
        co_return false;  // header already sent: all we can do is close
      // Bytes past the response (a body sent for HEAD, say) would be read as the next
      // response on this connection: such a connection is not reused.
      const bool clean = conn->buffer.size() == 0 &&
                         !(head && (res.get().has_content_length() || res.get().chunked()) &&
                           res.content_length().value_or(1) != 0);
      if (backend_keep_alive && clean && backend.idle.size() < kPoolLimit) {
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
