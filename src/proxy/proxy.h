#pragma once
// The built-in HTTP/1.1 reverse proxy (proxy mode): the daemon owns the public port and
// forwards to whichever app is live, so a deploy never leaves the port unbound.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stats/histogram.h"

namespace sm::hosts {
class Router;
}

namespace sm::proxy {

using Clock = std::chrono::steady_clock;

/// A request the proxy answers itself instead of forwarding (webhooks): read whole.
struct LocalRequest {
  std::string target;                          // as sent: path and query
  std::map<std::string, std::string> headers;  // names in lower case; a repeated one: the last
  std::string body;
  std::string peer;                            // the client's address
};
/// The answer: `body` is sent as application/json; Retry-After when retry_after_s > 0.
struct LocalAnswer {
  int status = 200;
  std::string body;
  int retry_after_s = 0;
};

/// Bodies of local requests above this get 413 without being read.
inline constexpr size_t kLocalBodyLimit = 1 << 20;

/// What the proxy counted since it started (GET /metrics). A request is counted once
/// its answer's head was written, by its status class; one that got no answer (the
/// client left first) is not. Upgrade tunnels are counted apart: their answer is the
/// app's, piped unread.
struct Stats {
  std::array<uint64_t, 5> responses{};  // [0] 1xx … [4] 5xx
  stats::HistogramSnapshot duration;   // seconds from the request's header read to its answer written
  uint64_t upgrades = 0;                 // Upgrade (WebSocket) tunnels opened
  uint64_t open_connections = 0;         // client connections open now
};

/// Maintenance (contract §14): what an app in maintenance answers, 503 with Retry-After.
struct Maintenance {
  std::string html;  // to a client that accepts text/html
  std::string text;  // one line, to any other
  int retry_after_s = 60;
};

/// The CPUs this process may run on (its affinity; at least 1): proxy_workers' default.
size_t usable_cpus();

/// The cookie that keeps a visitor on its side of a canary: "new" or "old".
inline constexpr std::string_view kCanaryCookie = "slot-machine-canary";
/// Which side a request's Cookie header value names: nullopt when none, or one this
/// proxy never sets (drawn afresh). True: new.
std::optional<bool> canary_side(std::string_view cookie_header);

struct Options {
  std::string public_bind = "0.0.0.0";
  int public_port = 0;
  int internal_port = 0;  // when != public_port, also 127.0.0.1:internal_port → app's internal port
  std::chrono::milliseconds backend_timeout{30000};  // no response header by then → 504
  std::chrono::milliseconds header_timeout{10000};   // request header incomplete → 408
  size_t max_connections = 10000;
  size_t max_conns_per_ip = 256;  // beyond this a client address's new connections are closed; 0 = any
  // The one app's request body limit (contract §15; several apps: each its own, in the
  // host routes): a larger Content-Length gets 413 before the app sees anything, a chunked
  // body that passes it is cut with 413 and the app's connection closed. 0: none.
  uint64_t max_request_body = 0;
  // The one app's codings for compressing answers, best first (contract §15; several
  // apps: each its own, in the host routes); empty: none.
  std::vector<std::string> compress;
  // Event loops, each on a thread of its own, connections spread over them (contract
  // §15, proxy_workers); 1: one loop, as before.
  size_t workers = 1;
  // Listening sockets given to the daemon (socket activation, upgrade), used instead of
  // binding public_port / internal_port; -1: bind it.
  int public_fd = -1;
  int internal_fd = -1;
  // HTTPS (config "tls"): TLS on tls_port with this PEM certificate chain and key, and
  // plain HTTP on public_port answers 308 to it. 0: no HTTPS.
  int tls_port = 0;
  std::string tls_cert, tls_key;
  int tls_fd = -1;  // a given listening socket for tls_port
  // With tls_port and no tls_cert (ACME): the key authorization for an HTTP-01 token,
  // answered on public_port; nullopt: none pending for it. Called on the event loop.
  std::function<std::optional<std::string>(std::string_view token)> acme_challenge;
  // Webhooks: requests whose path is `local_path` or under it ("<local_path>/...") on the
  // public and HTTPS ports are answered by `local` (on the event loop: it must not block)
  // and never reach the app; only POST, with a body of at most kLocalBodyLimit. With
  // HTTPS, the plain port redirects them like everything else. Empty: none.
  std::string local_path;
  std::function<LocalAnswer(const LocalRequest&)> local;
};

/// Proxy runs one event loop on its own thread. Until the first switch_to() nothing
/// listens (the public port refuses connections). Each request is routed to the backend
/// that is current when its header has been read, so after a switch the next request on
/// an open keep-alive connection goes to the new app while requests already in flight
/// finish on the old one. Bodies stream both ways; Upgrade requests become byte tunnels.
class Proxy {
 public:
  explicit Proxy(Options opts);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  /// Routes new requests to the app on `port` / `internal_port`. Starts listening on the
  /// first call; throws std::runtime_error naming the address when it cannot bind.
  void switch_to(int port, int internal_port);

  /// Several apps (contract §13): from now on each request on the public and HTTPS
  /// ports goes to the app its Host (and path prefix) names, as `router` decides; an
  /// app already in the previous router keeps its live version. Nothing listens until
  /// listen_now().
  void route_hosts(std::shared_ptr<const hosts::Router> router);
  /// Several apps: routes new requests for `app` to the process on `port`. Throws
  /// std::runtime_error when the router has no such app.
  void switch_app(const std::string& app, int port);

  /// Maintenance for `app` ("" when the proxy serves one app): from the next request on,
  /// every request on the public and HTTPS ports for it but those under /.slot-machine/
  /// gets `m` (nullptr: served again). Independent of switches and reloads.
  void set_maintenance(const std::string& app, std::shared_ptr<const Maintenance> m);
  /// Pause (contract §14) of `app` ("" for the only one): its new requests on the public
  /// and HTTPS ports wait, header read and body not, in arrival order, until resume()
  /// (then they are routed to whatever is live) or `timeout` (then they get 503 with
  /// Retry-After and the pause ends); past kMaxHeld waiting, 503 at once. False when it
  /// is paused already.
  bool pause(const std::string& app, std::chrono::seconds timeout);
  /// Ends `app`'s pause: the waiting requests go on. False when it is not paused.
  bool resume(const std::string& app);
  /// Since when `app` is paused (RFC 3339) and how many requests wait; nothing when not.
  struct Paused {
    std::string since;
    int held = 0;
  };
  std::optional<Paused> paused(const std::string& app) const;
  static constexpr int kMaxHeld = 10000;
  /// Canary (contract §14) of `app` ("" for the only one): from the next request on, its
  /// requests on the public and HTTPS ports are split between its live version and the
  /// process on `port`. A request whose cookie names a side (kCanaryCookie=new|old) goes
  /// there; any other is drawn new with probability `percent`/100 and its answer sets
  /// the cookie (an Upgrade's answer is the app's: drawn again next time). `percent` 0
  /// ends it; so does a switch to `port` (promote: everyone to it at once).
  void set_canary(const std::string& app, int port, int percent);
  /// Requests routed to each side since the canary began; nothing when none runs.
  struct CanaryCounts {
    uint64_t requests_new = 0, requests_old = 0;
  };
  std::optional<CanaryCounts> canary(const std::string& app) const;
  /// Starts listening now, before any switch_to (requests get 503 until then): for
  /// sockets the daemon was given, which queue connections whether it accepts or not.
  void listen_now();

  /// The listening sockets, by LISTEN_FDNAMES name ("public", "internal", "https"):
  /// none before it listens.
  std::vector<std::pair<std::string, int>> listening_sockets();

  /// Stops accepting (the sockets stay open for whoever else holds them); the open
  /// connections close as their requests finish (see hand_over).
  void stop_accepting();

  /// stop_accepting(), then lets the open connections finish: each gets `Connection: close` on its next response, one
  /// waiting idle for a next request is closed after a second, Upgrade tunnels stay
  /// until `deadline` and are then closed. Returns when no connection is left or at
  /// `deadline`.
  void hand_over(Clock::time_point deadline);

  /// Blocks until no request to the app on `port` is in flight and no Upgrade
  /// (WebSocket) tunnel to it is open, or until `deadline`, or until `stop()` (when
  /// given) says so; then closes the tunnels still open, unless stopped.
  void wait_idle(int port, Clock::time_point deadline, const std::function<bool()>& stop = {});

  /// Serves HTTPS with this certificate chain and key (PEM files) from the next
  /// connection on; connections already open keep the one they began with. Throws
  /// naming the file, and then changes nothing.
  void use_certificate(const std::string& cert, const std::string& key);

  /// Several apps: serves HTTPS for `app`'s hosts with this certificate chain and key
  /// from the next handshake on (the client's server name picks it). Throws naming the
  /// file, and then changes nothing.
  void use_app_certificate(const std::string& app, const std::string& cert, const std::string& key);

  /// The counters so far (any thread; each value is read on its own, so a request
  /// ending meanwhile may show in one and not yet in another).
  Stats stats() const;

  /// Several apps: each app's own request counters (open_connections 0: connections are
  /// not an app's), by name.
  std::map<std::string, Stats> app_stats() const;

  /// Number of requests in flight to the app on `port`.
  int in_flight(int port) const;
  /// Number of Upgrade tunnels open to the app on `port`.
  int tunnels(int port) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sm::proxy
