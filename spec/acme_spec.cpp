// Contract §8: HTTPS with certificates from an ACME CA (tls.acme), against a real one:
// Debian's pebble, on loopback ports with its own test CA, validating HTTP-01 against
// our proxy. pebble-challtestsrv answers its DNS queries (every name → 127.0.0.1), so
// the certificate can carry several names and SNI can be checked for each.

#include <utility>  // before Asio: its awaitable.hpp needs std::exchange

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "apps_support.h"
#include "harness.h"
#include "harness_process.h"
#include "service_support.h"

using namespace spec;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;

const std::vector<std::string> kDomains = {"app.test", "www.app.test"};

/// pebble (and pebble-challtestsrv for its DNS) on fresh loopback ports; stopped when
/// destroyed. `http_port` is where it sends HTTP-01 validations: our public port.
class Pebble {
 public:
  Pebble(const AppRepo& repo, int http_port, int dir_port = free_port()) : dir_port_(dir_port) {
    // pebble's own HTTPS certificate: made once per test, so a test's stand-in CA and
    // every pebble it starts are trusted through the same ca_file.
    fs::path crt = repo.home() / "pebble.crt", key = repo.home() / "pebble.key";
    if (!fs::exists(crt)) std::tie(crt, key) = self_signed_cert(repo, "pebble");
    ca_ = crt;
    dns_port_ = free_port();
    mgmt_port_ = free_port();
    dns_mgmt_port_ = free_port();
    const fs::path config = repo.home() / "pebble.json";
    std::ofstream(config) << json{{"pebble",
                                   {{"listenAddress", fmt::format("127.0.0.1:{}", dir_port_)},
                                    {"managementListenAddress", fmt::format("127.0.0.1:{}", mgmt_port_)},
                                    {"certificate", crt.string()},
                                    {"privateKey", key.string()},
                                    {"httpPort", http_port},
                                    {"tlsPort", free_port()},
                                    {"ocspResponderURL", ""},
                                    {"externalAccountBindingRequired", false}}}}
                                 .dump();
    const fs::path log = repo.home() / "pebble.log";
    dns_ = detail::spawn_with({"/usr/bin/pebble-challtestsrv", "-management", fmt::format("127.0.0.1:{}", dns_mgmt_port_),
                               "-dns01", fmt::format("127.0.0.1:{}", dns_port_), "-http01", "", "-https01", "",
                               "-tlsalpn01", "", "-defaultIPv6", ""},
                              repo.home(), {}, log, log);
    pebble_ = detail::spawn_with({"/usr/bin/pebble", "-config", config.string(), "-dnsserver",
                                  fmt::format("127.0.0.1:{}", dns_port_)},
                                 repo.home(), {{"PEBBLE_VA_NOSLEEP", "1"}}, log, log);
    for (int i = 0; i < 500 && !(port_open(dir_port_) && port_open(mgmt_port_) && port_open(dns_mgmt_port_)); ++i)
      std::this_thread::sleep_for(10ms);
    REQUIRE_MESSAGE(port_open(dir_port_), read_file(log));
  }
  ~Pebble() {
    for (pid_t p : {pebble_, dns_}) {
      kill(p, SIGTERM);
      if (detail::wait_exit(p, 5s) == -1) {
        kill(p, SIGKILL);
        waitpid(p, nullptr, 0);
      }
    }
  }
  std::string directory_url() const { return fmt::format("https://localhost:{}/dir", dir_port_); }
  /// Makes `host` resolve to `ip` for the CA (every other name is 127.0.0.1).
  void point(const std::string& host, const std::string& ip) {
    httplib::Client c("127.0.0.1", dns_mgmt_port_);
    auto r = c.Post("/add-a", json{{"host", host}, {"addresses", {ip}}}.dump(), "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
  /// Trust for pebble's own HTTPS (the directory), not for what it issues.
  const fs::path& ca_file() const { return ca_; }
  /// pebble's root for this run (regenerated at each start), written to `to`.
  fs::path root(const fs::path& to) const {
    httplib::Client c(fmt::format("https://localhost:{}", mgmt_port_));
    c.set_ca_cert_path(ca_.c_str());
    auto r = c.Get("/roots/0");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    std::ofstream(to) << r->body;
    return to;
  }

 private:
  int dir_port_, dns_port_ = 0, mgmt_port_ = 0, dns_mgmt_port_ = 0;
  fs::path ca_;
  pid_t pebble_ = -1, dns_ = -1;
};

/// The message a daemon logs when pebble's certificate for kDomains is in use.
const std::string kInstalled = "ACME: new certificate for app.test, www.app.test installed";

json acme_config(const Pebble& p, int http_port, int tls_port) {
  return {{"port", http_port},
          {"tls",
           {{"port", tls_port},
            {"acme",
             {{"domains", kDomains}, {"email", "ops@app.test"}, {"directory_url", p.directory_url()},
              {"ca_file", p.ca_file().string()}}}}}};
}

/// curl for https://NAME:PORT/PATH (NAME resolved to 127.0.0.1, so SNI is NAME),
/// trusting only `ca`; its output and exit code.
RunResult curl_name(const std::string& name, int port, const fs::path& ca, const fs::path& cwd,
                    const std::string& path = "/") {
  return run({"/usr/bin/curl", "-sS", "--max-time", "10", "--resolve", fmt::format("{}:{}:127.0.0.1", name, port),
              "--cacert", ca.string(), fmt::format("https://{}:{}{}", name, port, path)},
             cwd, {}, 20s);
}

int count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

/// Waits until the daemon's log has `n` occurrences of `text`; returns whether it did.
bool wait_log(const Daemon& d, const std::string& text, int n, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (count(d.log(), text) < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

/// A certificate for `names`, self-signed, valid from now-`age` for `life` in all, with
/// its key: PEM files at dir/cert.pem and dir/key.pem.
void short_lived_cert(const fs::path& dir, const std::vector<std::string>& names, long age_s, long life_s) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  X509_gmtime_adj(X509_getm_notBefore(x), -age_s);
  X509_gmtime_adj(X509_getm_notAfter(x), life_s - age_s);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(names[0].c_str()), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_set_pubkey(x, key);
  std::string san;
  for (const auto& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  X509_sign(x, key, EVP_sha256());
  FILE* f = fopen((dir / "cert.pem").c_str(), "w");
  PEM_write_X509(f, x);
  fclose(f);
  f = fopen((dir / "key.pem").c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
}

/// One TLS connection to 127.0.0.1:port with SNI `name`, verified against `ca`, for
/// several requests in a row.
class TlsConnection {
 public:
  TlsConnection(int port, const std::string& name, const fs::path& ca)
      : ctx_(asio::ssl::context::tls_client), stream_(io_, ctx_), name_(name) {
    ctx_.load_verify_file(ca.string());
    stream_.next_layer().connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
    SSL_set_tlsext_host_name(stream_.native_handle(), name.c_str());
    stream_.set_verify_mode(asio::ssl::verify_peer);
    stream_.set_verify_callback(asio::ssl::host_name_verification(name));
    stream_.handshake(asio::ssl::stream_base::client);
  }
  /// GET / on this connection (Host: `host`, default the server name): the body, or what
  /// went wrong; `status` gets the answer's status.
  std::string get(const std::string& host = "", int* status = nullptr) {
    beast::http::request<beast::http::empty_body> req{beast::http::verb::get, "/", 11};
    req.set(beast::http::field::host, host.empty() ? name_ : host);
    beast::error_code ec;
    beast::http::write(stream_, req, ec);
    if (ec) return "write failed: " + ec.message();
    beast::http::response<beast::http::string_body> res;
    beast::http::read(stream_, buf_, res, ec);
    if (ec) return "read failed: " + ec.message();
    if (status) *status = res.result_int();
    return res.body();
  }

 private:
  asio::io_context io_;
  asio::ssl::context ctx_;
  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  beast::flat_buffer buf_;
  std::string name_;
};

}  // namespace

TEST_CASE("ACME: a certificate for two names from pebble through HTTP-01, served with SNI for each, "
          "stored under <data>/tls (keys 0600) and reused by the next daemon") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  const int http_port = free_port(), tls_port = free_port();
  Pebble ca(repo, http_port);
  json config = acme_config(ca, http_port, tls_port);
  repo.write_config(config);
  Daemon d(repo, kProxyMode);
  REQUIRE_MESSAGE(d.deploy(v1).status == 200, d.log());  // deploys do not wait for the certificate
  REQUIRE_MESSAGE(wait_log(d, kInstalled, 1, 60s), d.log());
  const fs::path root = ca.root(repo.home() / "pebble-root.pem");
  const fs::path cwd = repo.home();

  // Verified against pebble's root for each name (SNI); a name not on it is refused.
  for (const auto& name : kDomains) {
    auto r = curl_name(name, tls_port, root, cwd);
    CHECK_MESSAGE(r.exit_code == 0, name << ": " << r.err);
    CHECK(r.out.find("hello from v1") != std::string::npos);
  }
  auto other = curl_name("other.test", tls_port, root, cwd);
  CHECK(other.exit_code != 0);
  CHECK(other.out.empty());
  // Plain HTTP redirects now that there is a certificate.
  auto plain = run({"/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                    "-H", "Host: app.test", fmt::format("http://127.0.0.1:{}/x", http_port)}, cwd, {}, 20s);
  CHECK(plain.out == fmt::format("308 https://app.test:{}/x", tls_port));

  // Stored, keys readable by the owner only, the CA and names recorded.
  const fs::path tls = d.data_dir() / "tls";
  for (const char* f : {"account.key", "key.pem"}) {
    struct stat st{};
    REQUIRE(stat((tls / f).c_str(), &st) == 0);
    CHECK_MESSAGE((st.st_mode & 0777) == 0600, f);
  }
  const json order = json::parse(read_file(tls / "order.json"));
  CHECK(order["directory_url"] == ca.directory_url());
  CHECK(order["domains"] == kDomains);

  // A restarted daemon serves the stored certificate at once and orders nothing.
  REQUIRE(d.stop() == 0);
  d.restart();
  REQUIRE(wait_log(d, "with the certificate in " + (tls / "cert.pem").string(), 1, 10s));
  auto again = curl_name("www.app.test", tls_port, root, cwd);
  CHECK_MESSAGE(again.exit_code == 0, again.err);
  CHECK(again.out.find("hello from v1") != std::string::npos);
  CHECK(count(d.log(), "ACME: obtaining") == 1);
  // So does the daemon an upgrade starts, on the sockets it is handed.
  Http up = upgrade(d);
  REQUIRE_MESSAGE(up.status == 200, up.body);
  auto upgraded = curl_name("app.test", tls_port, root, cwd);
  CHECK_MESSAGE(upgraded.exit_code == 0, upgraded.err);
  CHECK(count(d.log(), "ACME: obtaining") == 1);
  check_clean_stop(d);
}

TEST_CASE("ACME failures: a truncated directory, then a challenge the CA cannot validate, are logged "
          "with the reason and retried with backoff while HTTP serving and deploys go on") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  const int http_port = free_port(), tls_port = free_port(), dir_port = free_port();
  const auto [crt, key] = self_signed_cert(repo, "pebble");  // the pebbles below use it too
  // A "CA" whose directory answer is cut short.
  httplib::SSLServer fake(crt.c_str(), key.c_str());
  fake.Get("/dir", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"newNonce": "https://localhost/nonce", "newAcc)", "application/json");
  });
  std::jthread fake_thread([&] { fake.listen("127.0.0.1", dir_port); });
  json config = {{"port", http_port},
                 {"tls",
                  {{"port", tls_port},
                   {"acme",
                    {{"domains", kDomains},
                     {"directory_url", fmt::format("https://localhost:{}/dir", dir_port)},
                     {"ca_file", crt.string()}}}}}};
  repo.write_config(config);
  Daemon d(repo, kProxyMode);
  CHECK_MESSAGE(wait_log(d, "is not JSON", 1, 20s), d.log());
  CHECK(d.log().find("trying again in 5 s") != std::string::npos);
  fake.stop();
  fake_thread.join();

  // Meanwhile: deploys work, plain HTTP says why it cannot redirect yet, HTTPS is closed.
  REQUIRE_MESSAGE(d.deploy(v1).status == 200, d.log());
  Http meanwhile = http_get(http_port, "/");
  CHECK(meanwhile.status == 503);
  CHECK(meanwhile.body.find("certificate is still being obtained") != std::string::npos);
  CHECK(curl_name("app.test", tls_port, crt, repo.home()).exit_code != 0);

  {  // A CA that validates against a port nobody answers on: the CA's reason is logged.
    Pebble wrong(repo, free_port(), dir_port);
    CHECK_MESSAGE(wait_log(d, "could not validate", 1, 30s), d.log());
    CHECK(d.log().find("urn:ietf:params:acme:error:connection") != std::string::npos);
    CHECK(d.log().find("trying again in 10 s") != std::string::npos);
  }
  Pebble right(repo, http_port, dir_port);
  REQUIRE_MESSAGE(wait_log(d, kInstalled, 1, 40s), d.log());
  const fs::path root = right.root(repo.home() / "pebble-root.pem");
  auto served = curl_name("app.test", tls_port, root, repo.home());
  CHECK_MESSAGE(served.exit_code == 0, served.err);
  CHECK(served.out.find("hello from v1") != std::string::npos);
  check_clean_stop(d);
}

TEST_CASE("ACME renewal: a certificate with a third of its life left is renewed in the background "
          "and swapped in; a connection opened before keeps working") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  const int http_port = free_port(), tls_port = free_port();
  Pebble ca(repo, http_port);
  json config = acme_config(ca, http_port, tls_port);
  repo.write_config(config);
  // A stored certificate from this CA's directory for these names, 30 s long, 12 s old:
  // served at start, due for renewal 8 s later.
  const fs::path tls = repo.data_dir() / "tls";
  fs::create_directories(tls);
  short_lived_cert(tls, kDomains, 12, 30);
  std::ofstream(tls / "order.json") << json{{"directory_url", ca.directory_url()}, {"domains", kDomains}}.dump();
  Daemon d(repo, kProxyMode);
  REQUIRE_MESSAGE(d.deploy(v1).status == 200, d.log());
  TlsConnection before(tls_port, "app.test", tls / "cert.pem");  // the old certificate
  CHECK(before.get().find("hello from v1") != std::string::npos);
  CHECK(d.log().find("ACME: obtaining") == std::string::npos);

  REQUIRE_MESSAGE(wait_log(d, kInstalled, 1, 40s), d.log());
  CHECK(d.log().find("ACME: renewing a certificate for app.test, www.app.test") != std::string::npos);
  // The connection made with the old certificate goes on; new ones get pebble's.
  CHECK(before.get().find("hello from v1") != std::string::npos);
  const fs::path root = ca.root(repo.home() / "pebble-root.pem");
  auto fresh = curl_name("app.test", tls_port, root, repo.home());
  CHECK_MESSAGE(fresh.exit_code == 0, fresh.err);
  CHECK(fresh.out.find("hello from v1") != std::string::npos);
  check_clean_stop(d);
}

TEST_CASE("ACME with several apps: each app gets its own certificate for its hosts, SNI picks it, a Host of "
          "another app on that connection is 421, and one app's failing domain delays no other") {
  AppRepo server, blog, shop, bad;
  for (auto* a : {&blog, &shop, &bad}) a->write_config();
  const std::string b1 = blog.commit("v1 of blog"), s1 = shop.commit("v1 of shop");
  bad.commit("v1 of bad");
  const int http_port = free_port(), tls_port = free_port();
  Pebble ca(server, http_port);
  ca.point("bad.test", "192.0.2.1");  // the CA cannot reach it: that app's order fails
  json c = server_fields(server, {{"port", http_port}});
  c["tls"] = {{"port", tls_port},
              {"acme", {{"email", "ops@app.test"}, {"directory_url", ca.directory_url()},
                        {"ca_file", ca.ca_file().string()}}}};
  c["apps"] = {{"blog", app_entry(blog, {"blog.test", "www.blog.test"})},
               {"shop", app_entry(shop, {"shop.test", "*.shop.test"})},
               {"bad", app_entry(bad, {"bad.test"})}};
  std::ofstream(server.config_path()) << c.dump(2);
  Daemon d(server, kProxyMode);
  REQUIRE(http_post(d.api_port(), "/apps/blog/deploy", json{{"commit", b1}}.dump()).status == 200);
  REQUIRE(http_post(d.api_port(), "/apps/shop/deploy", json{{"commit", s1}}.dump()).status == 200);

  REQUIRE_MESSAGE(wait_log(d, "app blog: ACME: new certificate for blog.test, www.blog.test installed", 1, 40s),
                  d.log());
  REQUIRE_MESSAGE(wait_log(d, "app shop: ACME: new certificate for shop.test installed", 1, 40s), d.log());
  const fs::path root = ca.root(server.home() / "pebble-root.pem");
  for (const auto& [name, body] : {std::pair{"blog.test", "v1 of blog"}, {"www.blog.test", "v1 of blog"},
                                   {"shop.test", "v1 of shop"}}) {
    auto r = curl_name(name, tls_port, root, server.home());
    CHECK_MESSAGE(r.exit_code == 0, name << ": " << r.err);
    CHECK_MESSAGE(r.out.find(body) != std::string::npos, name << ": " << r.out);
  }
  const auto key_mode = fs::status(server.data_dir() / "apps" / "blog" / "tls" / "key.pem").permissions();
  CHECK((key_mode & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  // One connection, SNI blog.test: the blog answers; a request on it for the shop is 421.
  TlsConnection conn(tls_port, "blog.test", root);
  CHECK(conn.get().find("v1 of blog") != std::string::npos);
  int status = 0;
  conn.get("shop.test", &status);
  CHECK(status == 421);
  // Plain HTTP: 308 to HTTPS for a host with a certificate; 503 for the app still without.
  Http plain = http_get(http_port, "/");
  CHECK(plain.status == 404);  // 127.0.0.1 is no app's host
  httplib::Client h("127.0.0.1", http_port);
  auto r = h.Get("/", {{"Host", "shop.test"}});
  REQUIRE(r);
  CHECK(r->status == 308);
  CHECK(r->get_header_value("Location") == fmt::format("https://shop.test:{}/", tls_port));
  r = h.Get("/", {{"Host", "bad.test"}});
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->body.find("certificate is still being obtained") != std::string::npos);
  CHECK(curl_name("bad.test", tls_port, root, server.home()).exit_code != 0);
}
