#include "edge/acme/certificate.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

namespace sm::edge::acme {
namespace {

template <class T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};

std::time_t to_time(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) throw std::runtime_error("the certificate has an unreadable validity time");
  return timegm(&tm);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

CertInfo read_cert(const std::string& pem) {
  std::unique_ptr<BIO, Free<BIO, BIO_free_all>> b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<X509, Free<X509, X509_free>> cert(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!cert) throw std::runtime_error("no PEM certificate in it");
  CertInfo info;
  info.not_before = to_time(X509_get0_notBefore(cert.get()));
  info.not_after = to_time(X509_get0_notAfter(cert.get()));
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const ASN1_STRING* s = n->d.dNSName;
      info.names.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                             static_cast<size_t>(ASN1_STRING_length(s)))));
    }
    GENERAL_NAMES_free(sans);
  }
  return info;
}

bool covers(const CertInfo& cert, const std::vector<std::string>& domains) {
  return std::all_of(domains.begin(), domains.end(), [&](const std::string& d) {
    const std::string name = lower(d);
    return std::any_of(cert.names.begin(), cert.names.end(), [&](const std::string& n) {
      if (n == name) return true;
      const auto dot = name.find('.');
      return n.starts_with("*.") && dot != std::string::npos && name.substr(dot) == n.substr(1);
    });
  });
}

std::time_t renew_at(const CertInfo& cert) {
  return cert.not_after - (cert.not_after - cert.not_before) / 3;
}

std::string make_csr(const EcKey& key, const std::vector<std::string>& domains) {
  std::unique_ptr<X509_REQ, Free<X509_REQ, X509_REQ_free>> req(X509_REQ_new());
  X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(domains.at(0).c_str()), -1, -1, 0);
  std::string san;
  for (const auto& d : domains) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  std::unique_ptr<STACK_OF(X509_EXTENSION), void (*)(STACK_OF(X509_EXTENSION)*)> exts(
      sk_X509_EXTENSION_new_null(),
      [](STACK_OF(X509_EXTENSION)* s) { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); });
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
  if (!ext || !sk_X509_EXTENSION_push(exts.get(), ext) || X509_REQ_add_extensions(req.get(), exts.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1 || X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    ERR_clear_error();
    throw std::runtime_error("cannot make a certificate request for " + san);
  }
  unsigned char* der = nullptr;
  const int n = i2d_X509_REQ(req.get(), &der);
  if (n <= 0) throw std::runtime_error("cannot encode a certificate request");
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}


}  // namespace sm::edge::acme
