#include "edge/tls_files.h"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <fstream>

#include "config/config.h"
#include "test_support.h"

using namespace sm::edge;

namespace {

EVP_PKEY* new_key() { return EVP_EC_gen("P-256"); }

/// A self-signed certificate for `key`, valid from `from_s` to `to_s` seconds from now.
void write_cert(const std::filesystem::path& p, EVP_PKEY* key, long from_s, long to_s) {
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), from_s);
  X509_gmtime_adj(X509_getm_notAfter(x), to_s);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, key, EVP_sha256());
  FILE* f = std::fopen(p.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  X509_free(x);
}

void write_key(const std::filesystem::path& p, EVP_PKEY* key) {
  FILE* f = std::fopen(p.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

}  // namespace

TEST_CASE("certificate files: a good pair passes; each bad one is named") {
  sm::test::TempDir dir;
  EVP_PKEY* key = new_key();
  EVP_PKEY* other = new_key();
  const auto cert = dir.path / "cert.pem", pem = dir.path / "key.pem", wrong = dir.path / "other.pem";
  write_cert(cert, key, -60, 86400);
  write_key(pem, key);
  write_key(wrong, other);
  CHECK(check_cert_files({cert, pem}, "api_tls").size() == 20);

  CHECK_THROWS_WITH_AS(check_cert_files({cert, wrong}, "api_tls"),
                       doctest::Contains("is not the key of the certificate"), sm::config::ConfigError);
  CHECK_THROWS_WITH_AS(check_cert_files({dir.path / "missing.pem", pem}, "api_tls"),
                       doctest::Contains("\"api_tls.cert\": cannot read"), sm::config::ConfigError);
  CHECK_THROWS_WITH_AS(check_cert_files({pem, pem}, "api_tls"),
                       doctest::Contains("is not a PEM certificate"), sm::config::ConfigError);
  CHECK_THROWS_WITH_AS(check_cert_files({cert, cert}, "api_tls"),
                       doctest::Contains("\"api_tls.key\""), sm::config::ConfigError);

  const auto expired = dir.path / "expired.pem";
  write_cert(expired, key, -86400 * 2, -3600);
  CHECK_THROWS_WITH_AS(check_cert_files({expired, pem}, "api_tls"), doctest::Contains("expired on"),
                       sm::config::ConfigError);
  const auto future = dir.path / "future.pem";
  write_cert(future, key, 86400, 86400 * 2);
  CHECK_THROWS_WITH_AS(check_cert_files({future, pem}, "api_tls"), doctest::Contains("not valid before"),
                       sm::config::ConfigError);
  std::ofstream(dir.path / "garbage.pem") << "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  CHECK_THROWS_AS(check_cert_files({dir.path / "garbage.pem", pem}, "api_tls"), sm::config::ConfigError);
  EVP_PKEY_free(key);
  EVP_PKEY_free(other);
}
