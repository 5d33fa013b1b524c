#pragma once
// The proxy's socket type: Asio with one concrete executor, a deadline per pending
// operation checked by one watchdog per client connection, and the constants the
// proxy's pieces share.

#include <utility>  // before Asio: its awaitable.hpp needs std::exchange

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>

#include <chrono>
#include <memory>

namespace sm::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

// One concrete executor type throughout, instead of Asio's type-erased default: the
// erasure costs a few percent of the proxy's CPU per request.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Executor>;

template <class T>
using awaitable = asio::awaitable<T, Executor>;
constexpr asio::use_awaitable_t<Executor> use_awaitable;
inline auto redirect(error_code& ec) { return asio::redirect_error(use_awaitable, ec); }

/// A socket with a deadline for its pending operation, like beast::basic_stream's, but
/// enforced by one watchdog per client connection that looks every tick (see Watched),
/// not by a timer per operation: those timers were ~13% of the proxy's CPU per request.
/// A client connection on the HTTPS port reads and writes through TLS (Asio's
/// ssl::stream, OpenSSL); everything above it sees the same stream either way.
class TimedSocket {
 public:
  using executor_type = Executor;
  using Tls = asio::ssl::stream<Socket>;
  explicit TimedSocket(Socket s) : sock_(std::move(s)) {}
  explicit TimedSocket(Executor ex) : sock_(ex) {}
  /// TLS over `s` (the handshake is still to do: handshake()), with the certificate of
  /// `ctx`, which the connection keeps for its whole life: a certificate swapped in
  /// meanwhile is for the connections that come after.
  TimedSocket(Socket s, std::shared_ptr<asio::ssl::context> ctx)
      : sock_(s.get_executor()), ctx_(std::move(ctx)), tls_(std::make_unique<Tls>(std::move(s), *ctx_)) {}
  executor_type get_executor() { return sock_.get_executor(); }
  /// The TCP socket underneath (TLS or not).
  Socket& socket() { return tls_ ? tls_->next_layer() : sock_; }
  bool is_tls() const { return tls_ != nullptr; }
  /// The server name the TLS client asked for (SNI), after the handshake; "" for none.
  std::string server_name() const {
    if (!tls_) return "";
    const char* n = SSL_get_servername(const_cast<Tls&>(*tls_).native_handle(), TLSEXT_NAMETYPE_host_name);
    return n ? n : "";
  }
  /// The server side of the TLS handshake, bounded by the deadline set before.
  awaitable<error_code> handshake() {
    error_code ec;
    co_await tls_->async_handshake(asio::ssl::stream_base::server, redirect(ec));
    co_return why(ec);
  }
  /// Ends the TLS session (close_notify, waiting for the peer's up to the deadline set
  /// before); a plain socket only stops sending.
  awaitable<void> shutdown_send() {
    error_code ec;
    if (tls_)
      co_await tls_->async_shutdown(redirect(ec));
    else
      sock_.shutdown(Socket::shutdown_send, ec);
  }

  void expires_after(std::chrono::steady_clock::duration d) { deadline_ = Clock::now() + d; }
  void expires_never() { deadline_ = Clock::time_point::max(); }
  /// Called by the watchdog: cancels the pending operation once the deadline passed.
  void check(Clock::time_point now) {
    if (now < deadline_) return;
    deadline_ = Clock::time_point::max();
    timed_out_ = true;
    error_code ignore;
    socket().cancel(ignore);
  }
  /// Cancels the pending operation as if its deadline had passed.
  void time_out_now() {
    deadline_ = Clock::time_point::min();
    check(Clock::now());
  }
  /// `ec`, or beast::error::timeout when the operation was cancelled by its deadline.
  error_code why(error_code ec) {
    if (ec == asio::error::operation_aborted && timed_out_) ec = beast::error::timeout;
    timed_out_ = false;
    return ec;
  }

  /// The status of the last response head written to this client (0: none yet), for
  /// the proxy's request counters; whoever writes a response head sets it.
  unsigned answered = 0;

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& b, Token&& t) {
    if (tls_) return tls_->async_read_some(b, std::forward<Token>(t));
    return sock_.async_read_some(b, std::forward<Token>(t));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& b, Token&& t) {
    if (tls_) return tls_->async_write_some(b, std::forward<Token>(t));
    return sock_.async_write_some(b, std::forward<Token>(t));
  }

 private:
  Socket sock_;                              // the socket, unless tls_ owns it
  std::shared_ptr<asio::ssl::context> ctx_;  // on the HTTPS port: what tls_ was made with
  std::unique_ptr<Tls> tls_;                 // on the HTTPS port
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
  bool awaiting_request = false;  // waiting for the first byte of a next request
  bool served = false;            // a request header has been read on this connection
};

/// Points `w.backend` at a backend stream for as long as it lives.
struct WatchBackend {
  Watched& w;
  WatchBackend(Watched& watched, Stream& s) : w(watched) { w.backend = &s; }
  ~WatchBackend() { w.backend = nullptr; }
};

/// How long a client may be silent: between requests, during a body, and per write.
inline constexpr auto kClientIdle = std::chrono::seconds(75);
/// Bodies are relayed this many bytes at a time.
inline constexpr size_t kBodyChunk = 32 * 1024;


}  // namespace sm::proxy
