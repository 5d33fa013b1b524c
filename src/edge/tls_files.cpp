#include "edge/tls_files.h"

#include <fmt/format.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>

#include "config/config.h"

namespace sm::edge {
namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (!e) return "no PEM data found";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Bio open_file(const std::filesystem::path& p, const std::string& field) {
  Bio b(BIO_new_file(p.c_str(), "r"));
  if (!b)
    throw config::ConfigError(fmt::format("config: \"{}\": cannot read {}: {}", field, p.string(),
                                          openssl_error()));
  return b;
}

std::string rfc3339(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return "(unreadable time)";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string check_cert_files(const CertFiles& files, const std::string& field) {
  ERR_clear_error();
  Bio cb = open_file(files.cert, field + ".cert");
  Cert cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!cert)
    throw config::ConfigError(fmt::format("config: \"{}.cert\": {} is not a PEM certificate ({})",
                                          field, files.cert.string(), openssl_error()));
  const ASN1_TIME* not_after = X509_get0_notAfter(cert.get());
  const ASN1_TIME* not_before = X509_get0_notBefore(cert.get());
  if (X509_cmp_current_time(not_after) <= 0)
    throw config::ConfigError(fmt::format(
        "config: \"{}.cert\": the certificate in {} expired on {}; renew it", field,
        files.cert.string(), rfc3339(not_after)));
  if (X509_cmp_current_time(not_before) >= 0)
    throw config::ConfigError(fmt::format(
        "config: \"{}.cert\": the certificate in {} is not valid before {}; check the clock", field,
        files.cert.string(), rfc3339(not_before)));
  Bio kb = open_file(files.key, field + ".key");
  Key key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (!key)
    throw config::ConfigError(fmt::format(
        "config: \"{}.key\": {} is not an unencrypted PEM private key ({})", field,
        files.key.string(), openssl_error()));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    throw config::ConfigError(fmt::format(
        "config: \"{}.key\": the key in {} is not the key of the certificate in {}", field,
        files.key.string(), files.cert.string()));
  }
  return rfc3339(not_after);
}

}  // namespace sm::edge
