// Contract §8: HTTPS on the public side from certificate files (`tls`), and plain HTTP
// redirected to it. Certificates from an ACME CA: acme_spec.cpp.

#include <utility>  // before Asio: its awaitable.hpp needs std::exchange

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fstream>

#include "harness.h"
#include "service_support.h"

using namespace spec;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;


/// curl with `args`; its output (stdout) and exit code.
RunResult curl(const std::vector<std::string>& args, const fs::path& cwd) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "--max-time", "20"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, cwd, {}, 30s);
}

/// A WebSocket over TLS to /ws that sends `text` and returns "<greeting> | <echo>" (verifying the
/// server's certificate against `ca` for the name localhost).
std::string wss_echo(int port, const fs::path& ca, const std::string& text) {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(ca.string());
  beast::websocket::stream<asio::ssl::stream<asio::ip::tcp::socket>> ws(io, ctx);
  beast::get_lowest_layer(ws).connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  SSL_set_tlsext_host_name(ws.next_layer().native_handle(), "localhost");
  ws.next_layer().set_verify_mode(asio::ssl::verify_peer);
  ws.next_layer().set_verify_callback(asio::ssl::host_name_verification("localhost"));
  ws.next_layer().handshake(asio::ssl::stream_base::client);
  ws.handshake("localhost", "/ws");
  beast::flat_buffer greeting, buf;
  ws.read(greeting);  // testapp says who it is first
  ws.write(asio::buffer(text));
  ws.read(buf);
  return beast::buffers_to_string(greeting.data()) + " | " + beast::buffers_to_string(buf.data());
}

}  // namespace

TEST_CASE("HTTPS from certificate files: the configured certificate, keep-alive, streaming, "
          "large bodies, WebSocket, X-Forwarded-Proto; plain HTTP answers 308") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  const auto [crt, key] = self_signed_cert(repo, "site");
  const int tls_port = free_port();
  repo.write_config({{"tls", {{"port", tls_port}, {"cert", crt.string()}, {"key", key.string()}}}});
  Daemon d(repo, kProxyMode);
  REQUIRE(d.deploy(v1).status == 200);
  const std::string base = fmt::format("https://localhost:{}", tls_port);
  const fs::path cwd = repo.home();

  // Verified against the certificate, two requests on one connection.
  auto two = curl({"--cacert", crt.string(), "-w", " connects=%{num_connects}\n", base + "/", base + "/"}, cwd);
  CHECK_MESSAGE(two.exit_code == 0, two.err);
  CHECK(two.out.find("hello from v1") != std::string::npos);
  CHECK(two.out.find("connects=1") != std::string::npos);
  CHECK(two.out.find("connects=0") != std::string::npos);  // the second reused the connection
  // Without trusting it, curl refuses (exit 60): nothing is served in the clear instead.
  CHECK(curl({base + "/"}, cwd).exit_code == 60);

  auto headers = curl({"--cacert", crt.string(), base + "/headers"}, cwd);
  auto h = json::parse(headers.out);
  CHECK(h["X-Forwarded-Proto"] == "https");
  auto spoofed = curl({"--cacert", crt.string(), "-H", "X-Forwarded-Proto: http", base + "/headers"}, cwd);
  CHECK(json::parse(spoofed.out)["X-Forwarded-Proto"] == "https");

  auto sse = curl({"--cacert", crt.string(), "-N", base + "/events?n=3&ms=20"}, cwd);
  CHECK_MESSAGE(sse.out.find("data: event 2") != std::string::npos, sse.out);
  const fs::path big = repo.home() / "big.bin";
  {
    std::ofstream out(big, std::ios::binary);
    std::string chunk(1 << 20, 'x');
    for (int i = 0; i < 24; ++i) out << chunk;
  }
  auto up = curl({"--cacert", crt.string(), "--data-binary", "@" + big.string(), base + "/upload"}, cwd);
  CHECK_MESSAGE(up.out.find(std::to_string(24 << 20)) != std::string::npos, up.out << up.err);
  auto down = curl({"--cacert", crt.string(), "-o", "/dev/null", "-w", "%{size_download}",
                    base + "/download?bytes=50000000"}, cwd);
  CHECK(down.out == "50000000");
  CHECK(wss_echo(tls_port, crt, "hello over tls") == "testapp v1 | hello over tls");

  // Plain HTTP on `port`: 308 to the same target over HTTPS; ACME challenge paths are not
  // redirected (none is pending here: 404).
  auto plain = curl({"-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                     fmt::format("http://127.0.0.1:{}/a/b?c=1", d.public_port())}, cwd);
  CHECK(plain.out == fmt::format("308 https://127.0.0.1:{}/a/b?c=1", tls_port));
  auto challenge = curl({"-o", "/dev/null", "-w", "%{http_code}",
                         fmt::format("http://127.0.0.1:{}/.well-known/acme-challenge/x", d.public_port())}, cwd);
  CHECK(challenge.out == "404");

  // Garbage instead of a handshake, and plain HTTP to the HTTPS port: closed, never served.
  for (const std::string& bytes : {std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), std::string(300, '\x16')}) {
    const std::string answer = raw_exchange(tls_port, bytes);
    CHECK(answer.find("hello from") == std::string::npos);
  }
  CHECK(curl({"--cacert", crt.string(), base + "/"}, cwd).exit_code == 0);

  // SNI: a name the certificate does not carry is refused, even to a client that would
  // accept any certificate; an IP address sent as the name (wrk does) is served.
  auto unknown = curl({"-k", "--resolve", fmt::format("other.test:{}:127.0.0.1", tls_port),
                       fmt::format("https://other.test:{}/", tls_port)}, cwd);
  CHECK(unknown.exit_code != 0);
  CHECK(unknown.out.find("hello from") == std::string::npos);
  auto ip_name = run({"/usr/bin/openssl", "s_client", "-brief", "-connect", fmt::format("127.0.0.1:{}", tls_port),
                      "-servername", "127.0.0.1"}, cwd, {}, 20s);
  CHECK_MESSAGE(ip_name.err.find("CONNECTION ESTABLISHED") != std::string::npos, ip_name.err);

  // An upgrade hands the HTTPS socket over too.
  Http up2 = upgrade(d);
  REQUIRE(up2.status == 200);
  auto after = curl({"--cacert", crt.string(), base + "/"}, cwd);
  CHECK_MESSAGE(after.exit_code == 0, after.err);
  CHECK(after.out.find("hello from v1") != std::string::npos);
  check_clean_stop(d);
}

TEST_CASE("tls: refused at start in direct mode (files or acme), with an expired or mismatched "
          "certificate, or with both files and acme (exit 2, naming what)") {
  AppRepo repo;
  repo.commit("v1");
  const auto [crt, key] = self_signed_cert(repo, "site");
  const auto [crt2, key2] = self_signed_cert(repo, "other");
  auto start = [&](const json& tls, bool direct) { return start_refused(repo, {{"tls", tls}}, direct); };
  const int port = free_port();
  auto direct = start({{"port", port}, {"cert", crt.string()}, {"key", key.string()}}, true);
  CHECK(direct.exit_code == 2);
  CHECK(direct.err.find("\"tls\" needs proxy mode") != std::string::npos);
  auto mismatched = start({{"port", port}, {"cert", crt.string()}, {"key", key2.string()}}, false);
  CHECK(mismatched.exit_code == 2);
  CHECK(mismatched.err.find("\"tls.key\": the key in " + key2.string() + " is not the key of the certificate") !=
        std::string::npos);
  auto acme_direct = start({{"port", port}, {"acme", {{"domains", {"example.com"}}}}}, true);
  CHECK(acme_direct.exit_code == 2);
  CHECK(acme_direct.err.find("\"tls\" needs proxy mode") != std::string::npos);
  auto both = start({{"port", port}, {"cert", crt.string()}, {"key", key.string()},
                     {"acme", {{"domains", {"example.com"}}}}}, false);
  CHECK(both.exit_code == 2);
  CHECK(both.err.find("\"tls\" takes \"acme\" or \"cert\"/\"key\", not both") != std::string::npos);
}
