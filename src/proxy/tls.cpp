// The proxy's TLS contexts: how a certificate becomes something handshakes use, and the
// swap of one certificate for the next (ACME renewal, upgrade) without touching the
// connections that use the old one; and what plain HTTP answers beside HTTPS (308, ACME
// challenges, 503 until there is a certificate).

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <future>

#include "proxy/impl.h"

namespace sm::proxy {
namespace {

/// SNI: a name the certificate does not carry is refused with an unrecognized_name
/// alert (the connection closes), so a client never gets a certificate that cannot be
/// its site's. Without SNI (an IP address) the certificate is offered as it is.
int check_server_name(SSL* ssl, int* alert, void*) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;
  // Some clients (wrk, older curl) send an IP address as the name, which SNI does not
  // allow; treat it as no name.
  boost::system::error_code not_ip;
  asio::ip::make_address(name, not_ip);
  if (!not_ip) return SSL_TLSEXT_ERR_OK;
  X509* cert = SSL_CTX_get0_certificate(SSL_get_SSL_CTX(ssl));
  if (cert && X509_check_host(cert, name, 0, 0, nullptr) == 1) return SSL_TLSEXT_ERR_OK;
  *alert = SSL_AD_UNRECOGNIZED_NAME;
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

/// Several apps: the certificate of the app whose host the server name is; else the
/// default one (tls.cert) when it carries the name; else refused (unrecognized_name).
int Proxy::Impl::choose_app_certificate(SSL* ssl, int* alert, void* arg) {
  auto* self = static_cast<Proxy::Impl*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;
  const auto routes = self->routes.load();
  if (routes->hosts)
    if (const auto app = routes->hosts->app_of_server_name(name)) {
      std::lock_guard lock(self->tls_mu);
      if (const auto it = self->app_tls.find(routes->hosts->apps()[*app].name); it != self->app_tls.end()) {
        SSL_set_SSL_CTX(ssl, it->second->native_handle());  // takes its own reference
        return SSL_TLSEXT_ERR_OK;
      }
    }
  return check_server_name(ssl, alert, nullptr);
}

void Proxy::Impl::choose_by_server_name(asio::ssl::context& ctx) {
  SSL_CTX_set_tlsext_servername_callback(ctx.native_handle(), choose_app_certificate);
  SSL_CTX_set_tlsext_servername_arg(ctx.native_handle(), this);
}

std::shared_ptr<asio::ssl::context> tls_context(const std::string& cert, const std::string& key) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  // No server-side session cache (OpenSSL's default keeps up to 20,480 sessions for
  // 5 minutes: memory that grows with handshakes); resumption works with stateless
  // session tickets instead, as nginx's default does. Idle connections give their TLS
  // buffers back.
  SSL_CTX_set_session_cache_mode(ctx->native_handle(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_tlsext_servername_callback(ctx->native_handle(), check_server_name);
  if (cert.empty()) return ctx;  // no certificate yet (ACME): every handshake fails
  error_code ec;
  ctx->use_certificate_chain_file(cert, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot use {} for HTTPS: {}", cert, ec.message()));
  ctx->use_private_key_file(key, asio::ssl::context::pem, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot use {} for HTTPS: {}", key, ec.message()));
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    throw std::runtime_error(fmt::format("the key in {} is not the key of the certificate in {}", key, cert));
  return ctx;
}

void Proxy::use_certificate(const std::string& cert, const std::string& key) {
  auto ctx = tls_context(cert, key);  // throws before anything changes
  std::promise<void> swapped;
  asio::post(impl_->io, [&] {
    if (impl_->routes.load()->hosts) impl_->choose_by_server_name(*ctx);
    std::lock_guard lock(impl_->tls_mu);
    impl_->tls = std::move(ctx);
    impl_->have_certificate = true;
    swapped.set_value();
  });
  swapped.get_future().get();
}

void Proxy::use_app_certificate(const std::string& app, const std::string& cert, const std::string& key) {
  auto ctx = tls_context(cert, key);  // throws before anything changes
  std::promise<void> swapped;
  asio::post(impl_->io, [&] {
    std::lock_guard lock(impl_->tls_mu);
    impl_->app_tls[app] = std::move(ctx);
    swapped.set_value();
  });
  swapped.get_future().get();
}

awaitable<void> Proxy::Impl::redirect_to_https(Stream& client, const http::request<http::buffer_body>& req,
                                               bool ready) {
  const auto t = req.target();
  const std::string_view target(t.data(), t.size());
  if (constexpr std::string_view prefix = "/.well-known/acme-challenge/"; target.starts_with(prefix)) {
    const auto answer = opts.acme_challenge ? opts.acme_challenge(target.substr(prefix.size())) : std::nullopt;
    if (!answer) {
      co_await write_error(client, http::status::not_found, "no ACME challenge is pending for this token");
      co_return;
    }
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain");
    res.body() = *answer;
    res.prepare_payload();
    co_await write_last(client, res);
    co_return;
  }
  if (!ready) {  // ACME has not got one yet: nothing to redirect to
    http::response<http::string_body> res{http::status::service_unavailable, req.version()};
    res.set(http::field::content_type, "text/plain");
    res.set(http::field::retry_after, "30");
    res.body() = "HTTPS is not ready: the certificate is still being obtained\n";
    res.prepare_payload();
    co_await write_last(client, res);
    co_return;
  }
  const auto h = req[http::field::host];  // present: checked with the request
  std::string_view host(h.data(), h.size());
  if (host.starts_with('[')) {
    host = host.substr(0, host.find(']') + 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  const std::string location = fmt::format("https://{}{}{}", host,
                                           opts.tls_port == 443 ? "" : fmt::format(":{}", opts.tls_port),
                                           target);
  http::response<http::empty_body> res{http::status::permanent_redirect, req.version()};
  res.set(http::field::location, location);
  res.content_length(0);
  co_await write_last(client, res);
}

}  // namespace sm::proxy
