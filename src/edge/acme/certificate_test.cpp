#include "edge/acme/certificate.h"

#include <doctest/doctest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "edge/acme/manager.h"

using namespace sm::edge::acme;

namespace {

/// A self-signed certificate for `names`, valid from now+from_s to now+to_s.
std::string cert_pem(const EcKey& key, const std::vector<std::string>& names, long from_s, long to_s) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), from_s);
  X509_gmtime_adj(X509_getm_notAfter(x), to_s);
  X509_set_pubkey(x, key.get());
  std::string san;
  for (const auto& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
  if (!san.empty()) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key.get(), EVP_sha256());
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(b);
  X509_free(x);
  return out;
}

}  // namespace

TEST_CASE("a certificate's validity and names; renewal is due a third of its life before expiry") {
  const EcKey k = EcKey::generate();
  const std::time_t now = std::time(nullptr);
  const CertInfo info = read_cert(cert_pem(k, {"Example.COM", "www.example.com"}, -30 * 86400, 60 * 86400));
  CHECK(info.not_after - info.not_before == 90 * 86400);
  CHECK(info.names == std::vector<std::string>{"example.com", "www.example.com"});
  CHECK(renew_at(info) - now == doctest::Approx(30 * 86400).epsilon(0.001));  // day 60 of 90
  CHECK(covers(info, {"example.com"}));
  CHECK(covers(info, {"WWW.example.com", "example.com"}));
  CHECK_FALSE(covers(info, {"example.com", "api.example.com"}));

  const CertInfo wild = read_cert(cert_pem(k, {"*.example.com"}, 0, 86400));
  CHECK(covers(wild, {"api.example.com"}));
  CHECK_FALSE(covers(wild, {"example.com"}));
  CHECK_FALSE(covers(wild, {"a.b.example.com"}));

  CHECK_THROWS_WITH_AS(read_cert("garbage"), "no PEM certificate in it", std::runtime_error);
}

TEST_CASE("the certificate request names every domain and is signed by the key") {
  const EcKey k = EcKey::generate();
  const std::string der = make_csr(k, {"example.com", "www.example.com"});
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())),
                                                          X509_REQ_free);
  REQUIRE(req);
  CHECK(X509_REQ_verify(req.get(), k.get()) == 1);
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req.get());
  REQUIRE(exts);
  bool found = false;
  for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* e = sk_X509_EXTENSION_value(exts, i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_subject_alt_name) continue;
    BIO* b = BIO_new(BIO_s_mem());
    X509V3_EXT_print(b, e, 0, 0);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    CHECK(std::string(data, static_cast<size_t>(n)) == "DNS:example.com, DNS:www.example.com");
    BIO_free(b);
    found = true;
  }
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  CHECK(found);
}

TEST_CASE("ACME failures are retried after 5, 10, 20 ... seconds, at most an hour apart") {
  CHECK(retry_delay_s(1) == 5);
  CHECK(retry_delay_s(2) == 10);
  CHECK(retry_delay_s(3) == 20);
  CHECK(retry_delay_s(10) == 2560);
  CHECK(retry_delay_s(11) == 3600);
  CHECK(retry_delay_s(1000) == 3600);
}
