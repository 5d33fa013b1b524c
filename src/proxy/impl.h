#pragma once
// The proxy's inside, shared by its parts: proxy.cpp accepts clients, reads and checks
// their requests and routes them; routes.cpp keeps where they go (the route snapshot
// and its writers, the host-routing answers, the counters); upstream.cpp talks to the
// apps (connect, forward a request and its response, tunnel an Upgrade).

#include <boost/beast/http.hpp>
#include <pthread.h>

#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hosts/route.h"
#include "proxy/compress.h"
#include "proxy/proxy.h"
#include "proxy/relay.h"
#include "proxy/request_checks.h"

namespace sm::proxy {


inline constexpr auto kConnectTimeout = std::chrono::seconds(5);
/// What the proxy does to an app's answer on its way: a Set-Cookie to add (a canary's
/// drawn side; empty: none) and the codings it may compress it with (contract §15).
struct AnswerRules {
  std::string_view set_cookie;
  Codings compress;
};
inline constexpr size_t kHeaderLimit = 16 * 1024;
inline constexpr size_t kPoolLimit = 64;
/// Handing over, a connection idle between requests is closed after this long.
inline constexpr auto kDrainIdleGrace = std::chrono::seconds(1);
// Bodies stream, so they need no limit. Not boost::none: Boost 1.74 compares the
// Content-Length against the empty optional and rejects every body.
inline constexpr std::uint64_t kNoBodyLimit = std::numeric_limits<std::uint64_t>::max();
// What 405 answers name: the methods the proxy forwards (the app may allow fewer).
inline constexpr const char* kAllow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// A server TLS context with the PEM chain and key (none when `cert` is empty: every
/// handshake fails), refusing SNI names the certificate does not carry. Throws naming
/// the file (tls.cpp).
std::shared_ptr<asio::ssl::context> tls_context(const std::string& cert, const std::string& key);

/// Whether `ec` says the bytes a client sent broke the HTTP grammar (a bad chunk size or
/// extension), as opposed to the client leaving or stalling.
inline bool is_malformed(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_chunk).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

/// One idle-able connection to an app, with the bytes read past the last response.
struct BackendConn {
  explicit BackendConn(Executor ex) : stream(ex) {}
  Stream stream;
  beast::flat_buffer buffer;
};

/// An app the proxy forwards to: its port, requests in flight, idle keep-alive
/// connections. Each event loop has its own pool and tunnel list (index: Loop::index),
/// touched by that loop's thread only.
struct Backend {
  Backend(int p, size_t loops) : port(p), idle(loops), tunnel_sockets(loops) {}
  const int port;
  std::atomic<int> in_flight{0};
  std::atomic<int> tunnels{0};  // open Upgrade tunnels
  std::vector<std::vector<std::unique_ptr<BackendConn>>> idle;
  std::vector<std::vector<std::weak_ptr<Stream>>> tunnel_sockets;  // client sides
};

/// Owns one count of a backend's in_flight (taken by route(), so a drain that starts
/// after a switch sees every request routed before it); gives it back once.
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

/// The request counters behind Proxy::stats(): each event loop has its own, written by
/// that loop only, summed on read.
struct Counters {
  std::array<std::atomic<uint64_t>, 5> responses{};  // by status class
  stats::Histogram duration{stats::kRequestBounds};
  std::atomic<uint64_t> upgrades{0};
  /// Counts the request whose answer `client` carries (none: nothing), begun at `began`.
  void answered(const Stream& client, Clock::time_point began) {
    const unsigned cls = client.answered / 100;
    if (cls < 1 || cls > 5) return;
    stats::bump(responses[cls - 1]);
    duration.observe(std::chrono::duration<double>(Clock::now() - began).count());
  }
};

/// An app's request counters: one set per event loop, summed on read.
struct AppCounters {
  explicit AppCounters(size_t loops) {
    for (size_t i = 0; i < loops; ++i) by_loop.push_back(std::make_unique<Counters>());
  }
  std::vector<std::unique_ptr<Counters>> by_loop;
};

struct Proxy::Impl {
  /// One event loop on a thread of its own (contract §15, proxy_workers). Loop 0 also
  /// accepts, handing each connection to the next loop in turn, and runs what the public
  /// methods post. A session lives on one loop from accept to close.
  struct Loop {
    explicit Loop(size_t i) : index(i), work(asio::make_work_guard(io)) {}
    const size_t index;
    Counters counters;  // before io, which outlives sessions that count into it
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> work;
    std::thread thread;
  };
  /// The loop the calling thread runs (null off the loops).
  static inline thread_local Loop* current = nullptr;

  explicit Impl(Options o) : opts(std::move(o)), loops(make_loops(opts.workers)), io(loops.front()->io) {
    for (auto& l : loops)
      l->thread = std::thread([l = l.get()] {
        current = l;
        // `top -H` and /proc/PID/task/*/comm tell the loops apart.
        pthread_setname_np(pthread_self(), ("sm-proxy-" + std::to_string(l->index)).c_str());
        l->io.run();
      });
  }
  ~Impl() {
    asio::post(io, [this] {
      error_code ec;
      for (auto& a : acceptors) a.acceptor->close(ec);
    });
    for (auto& l : loops) asio::post(l->io, [l = l.get()] { l->io.stop(); });
    for (auto& l : loops) l->thread.join();
  }
  static std::vector<std::unique_ptr<Loop>> make_loops(size_t n) {
    std::vector<std::unique_ptr<Loop>> out;
    for (size_t i = 0; i < std::max<size_t>(n, 1); ++i) out.push_back(std::make_unique<Loop>(i));
    return out;
  }

  Options opts;
  const Codings one_app_codings = Codings::from_names(opts.compress);  // the one app's "compress"
  std::atomic<size_t> connections{0};  // declared before the loops, which outlive sessions
  std::atomic<int> accept_loops{0};    // accept_loop() coroutines still running
  std::mutex per_ip_mu;                // guards per_ip: taken at accept and at close only
  std::map<asio::ip::address, size_t> per_ip;  // open connections per client address
  std::vector<std::unique_ptr<Loop>> loops;
  asio::io_context& io;  // loop 0's
  size_t next_loop = 0;  // loop 0 only: the loop the next accepted connection goes to
  /// What a listening socket is for: the public port (plain HTTP), 127.0.0.1:internal_port
  /// (to the app's internal port), or HTTPS on tls_port.
  enum class Kind { Public, Internal, Https };
  struct Listening {
    std::string name;  // "public", "internal" or "https"
    std::unique_ptr<Acceptor> acceptor;
  };
  // With tls_port: the certificate new connections get (use_certificate() swaps it), and
  // whether there is one yet (ACME may still be getting it). Under tls_mu, as is:
  mutable std::mutex tls_mu;
  std::shared_ptr<asio::ssl::context> tls;
  bool have_certificate = false;
  // Several apps: each app's own certificate by name (use_app_certificate() swaps one
  // in), chosen by the client's server name during the handshake (tls.cpp).
  std::map<std::string, std::shared_ptr<asio::ssl::context>, std::less<>> app_tls;
  /// The certificate a new HTTPS connection starts with.
  std::shared_ptr<asio::ssl::context> tls_now() const {
    std::lock_guard lock(tls_mu);
    return tls;
  }
  /// Whether HTTPS can be served for `app` ("": any certificate at all).
  bool https_ready(const std::string& app) const {
    std::lock_guard lock(tls_mu);
    return have_certificate || (!app.empty() && app_tls.contains(app));
  }
  /// With several apps: makes `ctx` (the certificate a handshake starts with) pick the
  /// certificate of the app its server name belongs to (loop thread).
  void choose_by_server_name(asio::ssl::context& ctx);
  /// The handshake's server-name callback that does it (arg: this Impl).
  static int choose_app_certificate(SSL* ssl, int* alert, void* arg);
  std::vector<Listening> acceptors;  // loop thread after start
  bool listening = false;            // loop thread
  std::atomic<bool> draining{false};  // hand_over() began: close connections as they finish
  std::atomic<Clock::time_point> drain_began{};  // set before draining

  /// Where new requests go: replaced whole by switch_to(), switch_app() or route_hosts()
  /// (one writer at a time, under routes_write_mu), read by every request without a
  /// lock, so a switch never makes a request wait (and N loops can share it).
  /// Canary (contract §14): the new version beside live, and the share drawn to it.
  struct Canary {
    std::shared_ptr<Backend> backend;
    int percent = 0;
    struct Tally {
      std::atomic<uint64_t> to_new{0}, to_old{0};
    };
    std::shared_ptr<Tally> tally = std::make_shared<Tally>();
  };
  struct Routes {
    std::shared_ptr<Backend> public_backend, internal_backend;  // one app
    std::shared_ptr<const Canary> canary;                        // one app's, or null
    // Several apps (contract §13): the Host routes, and each app's live backend in the
    // router's order (null: nothing live for it yet).
    std::shared_ptr<const hosts::Router> hosts;
    std::vector<std::shared_ptr<Backend>> apps;
    std::vector<std::shared_ptr<AppCounters>> app_counters;  // each app's requests, kept across reloads
    std::vector<std::shared_ptr<const Canary>> canaries;  // each app's canary, or null
    std::vector<Codings> codings;                         // each app's "compress"
  };
  /// Which side of `c` serves `req` (`live` or the canary), given `roll` in [0, 100)
  /// drawn for it; `drawn` says the request named no side (its answer sets the cookie).
  static std::shared_ptr<Backend> split(const Canary& c, const std::shared_ptr<Backend>& live,
                                        const http::request<http::buffer_body>& req, unsigned roll, bool& drawn);
  /// A number in [0, 100) for split(), from this thread's generator.
  static unsigned canary_roll();
  std::atomic<std::shared_ptr<const Routes>> routes{std::make_shared<const Routes>()};
  // Paused apps by name ("" for the only one): each one's gate, whose timer held
  // requests wait on; cancelled by resume(), expiring at the timeout. Written on the loop.
  // Each loop's held requests wait on that loop's timer (which never expires: only
  // open_gate() cancels it, on its loop); the timeout is loop 0's `deadline`.
  struct Gate {
    explicit Gate(Impl& impl) : deadline(impl.io) {
      for (auto& l : impl.loops) {
        waits.push_back(std::make_unique<Timer>(l->io));
        waits.back()->expires_at(Clock::time_point::max());
      }
    }
    Timer deadline;
    std::vector<std::unique_ptr<Timer>> waits;  // by loop
    std::string since;
    std::atomic<int> held{0};
    std::atomic<bool> resumed{false};
  };
  using PauseMap = std::map<std::string, std::shared_ptr<Gate>>;
  std::atomic<std::shared_ptr<const PauseMap>> paused{std::make_shared<const PauseMap>()};
  /// Removes `app`'s gate when it is `gate`, and wakes what waits at it (loop thread).
  void open_gate(const std::string& app, const std::shared_ptr<Gate>& gate, bool resumed);
  /// Pause: waits while `app` is paused. False: answer 503 (the pause timed out, or too
  /// many wait already).
  awaitable<bool> hold(const std::string& app);
  /// The 503 of a request a pause held past its timeout (or could not hold).
  awaitable<void> answer_held(Stream& client, const http::request<http::buffer_body>& req);
  // Apps in maintenance by name ("" for the only one); empty almost always, so a request
  // pays one atomic load for it.
  using MaintenanceMap = std::map<std::string, std::shared_ptr<const Maintenance>>;
  std::atomic<std::shared_ptr<const MaintenanceMap>> maintenance{std::make_shared<const MaintenanceMap>()};
  std::mutex routes_write_mu;                 // serialises the writers of `routes`
  mutable std::mutex known_mu;                // guards `known`: switch_to and the counters, never a request
  std::vector<std::weak_ptr<Backend>> known;  // every backend, for in_flight()/wait_idle()

  /// Sums `what` over every backend on `port`.
  int count(int port, std::atomic<int> Backend::*what) const;

  /// Remembers `b` for in_flight()/wait_idle().
  void remember(const std::shared_ptr<Backend>& b);

  /// The backend `pick` chooses from the routes, with one in_flight count taken for the
  /// caller. The count is taken, then the routes are read again: when a switch
  /// published new ones in between, the count is given back and the new routes taken.
  /// So a drain that begins after switch_to() returned (and then reads in_flight) sees
  /// every request routed to the old backend: its count was taken before the switch,
  /// or the request went to the new backend.
  template <class Pick>
  std::shared_ptr<Backend> take(Pick pick) {
    for (;;) {
      const auto r = routes.load();
      auto b = pick(*r);
      if (!b) return b;
      ++b->in_flight;
      if (routes.load() == r) return b;
      --b->in_flight;
    }
  }

  /// Binds `host:port` (or takes `fd`, when given) and starts accepting on it; throws
  /// naming the config field.
  void listen(const std::string& host, int port, int fd, Kind kind);
  /// Listens on the public (and internal) port unless it already does (loop thread).
  void listen_once();

  /// Accepts clients until the acceptor is closed.
  awaitable<void> accept_loop(Acceptor& acc, Kind kind);
  /// Starts a session for an accepted client (counted in `connections` at once), or
  /// closes it at once when it is over the total or per-address cap.
  void serve_accepted(Socket sock, Kind kind);

  /// One client connection: read a request header, route it, forward it; repeat while
  /// both sides keep the connection alive.
  awaitable<void> session(Socket sock, asio::ip::address peer_addr, Kind kind);

  /// With HTTPS, what the plain public port answers instead of forwarding: 308 to the
  /// same target over HTTPS; an ACME HTTP-01 challenge path gets its key authorization
  /// (404 when none is pending); 503 while there is no certificate yet.
  /// `ready`: there is a certificate for the request's host (else 503 while ACME gets one).
  awaitable<void> redirect_to_https(Stream& client, const http::request<http::buffer_body>& req, bool ready);

  /// HTTPS with several apps: whether a request decided as `d` came on a connection
  /// whose TLS server name belongs to another app (421 Misdirected Request): a browser
  /// reusing one connection for two hosts that share an address.
  static bool is_misdirected(const hosts::Router& r, std::string_view server_name,
                             const http::request<http::buffer_body>& req, const hosts::Decision& d);
  /// Several apps: answers a request the Host routes decided not to forward (400, 404
  /// or a 308 to the app's canonical host).
  awaitable<void> answer_unrouted(Stream& client, const http::request<http::buffer_body>& req,
                                  const hosts::Decision& d);

  /// The 503 of an app in maintenance: its page as HTML to a client that accepts it,
  /// else its line of text; the connection then closes (the body is not read).
  awaitable<void> answer_maintenance(Stream& client, const http::request<http::buffer_body>& req,
                                     const Maintenance& m);

  /// Whether `req` is for Options::local (its path is local_path or below it).
  bool is_local(const http::request<http::buffer_body>& req) const;
  /// Reads the body of a request for Options::local (413 over kLocalBodyLimit, 405 for
  /// anything but POST), asks it and writes its answer; the connection then closes.
  awaitable<void> answer_locally(Stream& client, beast::flat_buffer& cbuf,
                                 http::request_parser<http::buffer_body>& req, const std::string& peer);

  /// Reads the next request header into `req`: waits up to kClientIdle for its first
  /// byte, then up to the header timeout for the rest, and checks it (request_checks.h).
  /// nullopt: forward it. A Refusal with status 0: close without an answer (the client
  /// left, or was idle); otherwise answer it and close.
  awaitable<std::optional<Refusal>> read_request_header(Stream& client, beast::flat_buffer& cbuf,
                                                        http::request_parser<http::buffer_body>& req,
                                                        Watched& watched);

  /// Every tick, times out whatever the session is waiting for past its deadline.
  awaitable<void> watchdog(std::shared_ptr<Watched> w);

  /// Adds X-Forwarded-For/-Proto/-Host for the app (Proto "https" on a TLS connection,
  /// whatever the client said).
  static void add_forwarded(http::request<http::buffer_body>& m, const std::string& peer, bool tls);

  // upstream.cpp

  /// A new connection to the app on `port` (nullptr when it cannot be reached in time).
  awaitable<std::unique_ptr<BackendConn>> connect(int port, Watched& w);

  /// Sends the request to the backend and streams the response back. Returns whether
  /// the client connection stays open for another request.
  awaitable<bool> forward(Stream& client, beast::flat_buffer& cbuf,
                          http::request_parser<http::buffer_body>& req, Backend& backend,
                          bool client_keep_alive, Watched& watched, const AnswerRules& rules);

  /// Upgrade (WebSocket): send the request header, then copy bytes both ways.
  awaitable<void> tunnel(Stream& client, beast::flat_buffer& cbuf,
                         http::request_parser<http::buffer_body>& req,
                         std::shared_ptr<Backend> backend, Watched& watched);

  /// Closes every tunnel to an app on `port`, or to any app: each loop its own (not on a
  /// loop's thread: it waits for them).
  void close_tunnels(std::optional<int> port);
  /// A new backend for `port`, with a pool per loop, remembered for in_flight().
  std::shared_ptr<Backend> backend_for(int port) {
    auto b = std::make_shared<Backend>(port, loops.size());
    remember(b);
    return b;
  }
  /// What every loop counted (any thread).
  Stats summed(const std::vector<const Counters*>& each) const;
};

}  // namespace sm::proxy
