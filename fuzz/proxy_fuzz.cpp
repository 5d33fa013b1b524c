// The proxy's request path: bytes in on a client socket, through a real Proxy to a stub
// app (Beast, answers every request it can parse with 200). The proxy must answer or
// close (no hang, no crash), and serve the next client normally afterwards.
#include <utility>  // before Asio: its awaitable.hpp needs std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <thread>

#include "net_support.h"
#include "proxy/proxy.h"

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

/// The stub app: one thread per connection, keep-alive, 200 "ok" for every request.
struct StubApp {
  asio::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
  std::thread thread{[this] { accept(); }};
  int port() const { return acceptor.local_endpoint().port(); }

  void accept() {
    for (;;) {
      tcp::socket s(io);
      boost::system::error_code ec;
      acceptor.accept(s, ec);
      if (ec) continue;
      std::thread([s = std::move(s)]() mutable { serve(s); }).detach();
    }
  }
  static void serve(tcp::socket& s) {
    boost::beast::flat_buffer b;
    for (;;) {
      http::request_parser<http::string_body> p;
      p.body_limit(1 << 20);
      boost::system::error_code ec;
      http::read(s, b, p, ec);
      if (ec) return;
      http::response<http::string_body> res{http::status::ok, 11};
      res.body() = "ok";
      res.keep_alive(p.get().keep_alive());
      res.prepare_payload();
      if (p.get().method() == http::verb::head) res.body().clear();  // length kept, no body
      http::write(s, res, ec);
      if (ec || !res.keep_alive()) return;
    }
  }
};

StubApp* app = nullptr;
sm::proxy::Proxy* proxy = nullptr;
int proxy_port = 0;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  app = new StubApp();  // both live until exit: their threads use them
  sm::proxy::Options o;
  proxy_port = fuzz::free_port();
  o.public_bind = "127.0.0.1";
  o.public_port = proxy_port;
  o.internal_port = proxy_port;
  o.backend_timeout = std::chrono::milliseconds(2000);
  o.header_timeout = std::chrono::milliseconds(1000);
  proxy = new sm::proxy::Proxy(o);
  proxy->switch_to(app->port(), app->port());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bool hung = false;
  fuzz::exchange(proxy_port, std::string_view(reinterpret_cast<const char*>(data), size), &hung);
  if (hung) __builtin_trap();  // answered or closed once the client has sent everything
  const std::string next =
      fuzz::exchange(proxy_port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  if (next.rfind("HTTP/1.1 200", 0) != 0) __builtin_trap();  // still serving everyone else
  return 0;
}
