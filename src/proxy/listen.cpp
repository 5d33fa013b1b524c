// Accepting clients and letting them go: the listening sockets (bound, or given by
// socket activation and upgrades), the accept loops with the connection caps, and the
// hand-over to a newer daemon. proxy.cpp serves what they accept.

#include <fmt/format.h>

#include <sched.h>

#include <algorithm>
#include <future>
#include <thread>

#include "proxy/impl.h"

namespace sm::proxy {

size_t usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return static_cast<size_t>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

void Proxy::Impl::listen(const std::string& host, int port, int fd, Kind kind) {
  auto acc = std::make_unique<Acceptor>(io.get_executor());
  error_code ec;
  if (fd >= 0) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    acc->assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  } else {
    tcp::endpoint ep(asio::ip::make_address(host), static_cast<unsigned short>(port));
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(Acceptor::reuse_address(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec)
    throw std::runtime_error(fmt::format("proxy cannot listen on {}:{}: {}; is another server "
                                         "using \"{}\"?",
                                         host, port, ec.message(),
                                         kind == Kind::Internal ? "internal_port"
                                         : kind == Kind::Https  ? "tls.port"
                                                                : "port"));
  asio::co_spawn(io, accept_loop(*acc, kind), asio::detached);
  acceptors.push_back({kind == Kind::Internal ? "internal" : kind == Kind::Https ? "https" : "public",
                       std::move(acc)});
}

void Proxy::Impl::listen_once() {
  if (listening) return;
  if (std::lock_guard lock(tls_mu); opts.tls_port && !tls) {
    tls = tls_context(opts.tls_cert, opts.tls_key);
    if (routes.load()->hosts) choose_by_server_name(*tls);
    have_certificate = !opts.tls_cert.empty();
  }
  listen(opts.public_bind, opts.public_port, opts.public_fd, Kind::Public);
  if (opts.internal_port != opts.public_port)
    listen("127.0.0.1", opts.internal_port, opts.internal_fd, Kind::Internal);
  if (opts.tls_port) listen(opts.public_bind, opts.tls_port, opts.tls_fd, Kind::Https);
  listening = true;
}

awaitable<void> Proxy::Impl::accept_loop(Acceptor& acc, Kind kind) {
  struct Running {  // hand_over() waits for every accept loop to end
    std::atomic<int>& loops;
    explicit Running(std::atomic<int>& n) : loops(n) { ++loops; }
    ~Running() { --loops; }
  } running{accept_loops};
  for (;;) {
    error_code ec;
    // Each connection to the next loop in turn: its socket belongs to that loop from here.
    Loop& to = *loops[next_loop++ % loops.size()];
    Socket sock = co_await acc.async_accept(to.io, redirect(ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {  // EMFILE and friends: back off instead of spinning
      if (!acc.is_open()) co_return;
      Timer t(io.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(redirect(ec));
      continue;
    }
    // A connection the kernel accepted is served even when stop_accepting() closed the
    // acceptor meanwhile: its client connected in time, and closing it unanswered would
    // fail its request (seen under load during upgrades).
    serve_accepted(std::move(sock), kind);
    if (!acc.is_open()) co_return;
  }
}

void Proxy::Impl::serve_accepted(Socket sock, Kind kind) {
  if (connections >= opts.max_connections) return;  // closes `sock`
  error_code ec;
  const auto peer = sock.remote_endpoint(ec).address();
  if (ec) return;  // already gone
  {
    std::lock_guard lock(per_ip_mu);  // one count for every loop
    auto& from_peer = per_ip[peer];
    if (opts.max_conns_per_ip && from_peer >= opts.max_conns_per_ip) {
      if (from_peer == 0) per_ip.erase(peer);
      return;  // refused: closes `sock`; other addresses are not affected
    }
    ++from_peer;
  }
  sock.set_option(tcp::no_delay(true), ec);
  // Counted now, not when the session first runs: hand_over() sees it once the accept
  // loops have ended.
  ++connections;
  const auto on = sock.get_executor();  // its loop's
  asio::co_spawn(on, session(std::move(sock), peer, kind), asio::detached);
}

void Proxy::listen_now() {
  std::promise<void> bound;
  asio::post(impl_->io, [&] {
    try {
      impl_->listen_once();
      bound.set_value();
    } catch (...) {
      bound.set_exception(std::current_exception());
    }
  });
  bound.get_future().get();
}

std::vector<std::pair<std::string, int>> Proxy::listening_sockets() {
  std::promise<std::vector<std::pair<std::string, int>>> fds;
  asio::post(impl_->io, [&] {
    std::vector<std::pair<std::string, int>> out;
    for (auto& a : impl_->acceptors)
      if (a.acceptor->is_open()) out.emplace_back(a.name, a.acceptor->native_handle());
    fds.set_value(std::move(out));
  });
  return fds.get_future().get();
}

void Proxy::stop_accepting() {
  std::promise<void> stopped;
  asio::post(impl_->io, [&] {
    if (!impl_->draining) {
      impl_->drain_began = Clock::now();
      impl_->draining = true;
    }
    error_code ignore;
    for (auto& a : impl_->acceptors) a.acceptor->close(ignore);  // close(), never shutdown()
    stopped.set_value();
  });
  stopped.get_future().get();
}

void Proxy::hand_over(Clock::time_point deadline) {
  stop_accepting();
  // A pause survives nothing: what it holds goes on to the app now (the newer daemon
  // starts unpaused).
  std::promise<void> opened;
  asio::post(impl_->io, [&] {
    for (const auto& [app, gate] : *impl_->paused.load()) impl_->open_gate(app, gate, true);
    opened.set_value();
  });
  opened.get_future().get();
  while ((impl_->accept_loops > 0 || impl_->connections > 0) && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (impl_->connections == 0) return;
  impl_->close_tunnels(std::nullopt);
}

}  // namespace sm::proxy
