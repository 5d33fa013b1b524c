#pragma once
// The proxy's socket type: Asio with one concrete executor, a deadline per pending
// operation checked by one watchdog per client connection, and the constants the
// proxy's pieces share.

#include <utility>  // before Asio: its awaitable.hpp needs std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>

#include <chrono>

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
  bool awaiting_request = false;  // waiting for the first byte of a next request
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

/// How long a client may be silent: between requests, during a body, and per write.
inline constexpr auto kClientIdle = std::chrono::seconds(75);
/// Bodies are relayed this many bytes at a time.
inline constexpr size_t kBodyChunk = 32 * 1024;

inline auto redirect(error_code& ec) { return asio::redirect_error(use_awaitable, ec); }

}  // namespace sm::proxy
