#include "edge/acme/jws.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <stdexcept>
#include <vector>

namespace sm::edge::acme {
namespace {

std::string openssl_error(const char* what) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  char buf[256] = "unknown error";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  return std::string(what) + ": " + buf;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

std::string bn_bytes(const BIGNUM* bn) {
  std::string out(32, '\0');
  if (BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), 32) != 32)
    throw std::runtime_error("an EC coordinate does not fit 32 bytes");
  return out;
}

std::string coordinate(EVP_PKEY* k, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(k, name, &bn) != 1) throw std::runtime_error(openssl_error("reading an EC key"));
  std::unique_ptr<BIGNUM, decltype(&BN_free)> owned(bn, BN_free);
  return bn_bytes(bn);
}

}  // namespace

std::string base64url(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    else if (c == '/') c = '_';
  }
  return out;
}

EcKey EcKey::generate() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (!k) throw std::runtime_error(openssl_error("generating a P-256 key"));
  return EcKey(k);
}

EcKey EcKey::from_pem(const std::string& pem) {
  Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr);
  if (!k) throw std::runtime_error(openssl_error("not an unencrypted PEM private key"));
  EcKey key(k);
  char group[64] = "";
  size_t len = 0;
  if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
      EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1 ||
      std::string_view(group) != "prime256v1") {
    ERR_clear_error();
    throw std::runtime_error("not an ECDSA P-256 key");
  }
  return key;
}

std::string EcKey::pem() const {
  Bio b(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(b.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error(openssl_error("writing a key"));
  char* data = nullptr;
  const long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

nlohmann::json EcKey::jwk() const {
  // Members in lexicographic order, as the thumbprint needs (nlohmann::json sorts them).
  return {{"crv", "P-256"},
          {"kty", "EC"},
          {"x", base64url(coordinate(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X))},
          {"y", base64url(coordinate(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y))}};
}

std::string EcKey::thumbprint() const {
  const std::string canonical = jwk().dump();  // no whitespace, keys sorted
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(canonical.data(), canonical.size(), digest, &n, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error(openssl_error("hashing a JWK"));
  return base64url(std::string_view(reinterpret_cast<const char*>(digest), n));
}

std::string EcKey::sign(std::string_view data) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1)
    throw std::runtime_error(openssl_error("signing"));
  std::vector<unsigned char> der(len);
  if (EVP_DigestSign(ctx.get(), der.data(), &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1)
    throw std::runtime_error(openssl_error("signing"));
  const unsigned char* p = der.data();
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)),
                                                            ECDSA_SIG_free);
  if (!sig) throw std::runtime_error(openssl_error("reading an ECDSA signature"));
  const BIGNUM *r = nullptr, *s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  return bn_bytes(r) + bn_bytes(s);
}

std::string sign_request(const EcKey& key, const std::string& kid, const std::string& nonce,
                         const std::string& url, const nlohmann::json& payload) {
  nlohmann::json header = {{"alg", "ES256"}, {"nonce", nonce}, {"url", url}};
  if (kid.empty())
    header["jwk"] = key.jwk();
  else
    header["kid"] = kid;
  const std::string protected64 = base64url(header.dump());
  const std::string payload64 = payload.is_null() ? "" : base64url(payload.dump());
  const std::string signature = key.sign(protected64 + "." + payload64);
  return nlohmann::json{{"protected", protected64}, {"payload", payload64}, {"signature", base64url(signature)}}
      .dump();
}

}  // namespace sm::edge::acme
