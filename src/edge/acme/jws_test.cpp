#include "edge/acme/jws.h"

#include <doctest/doctest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>

#include <memory>

using namespace sm::edge::acme;

namespace {

std::string unbase64url(std::string s) {
  for (char& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4) s += '=';
  std::string out(s.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  REQUIRE(n >= 0);
  out.resize(static_cast<size_t>(n) - (s.size() - s.find_last_not_of('=') - 1));
  return out;
}

/// Verifies an ES256 signature (R||S) of `data` with `key`'s public half.
bool verifies(const EcKey& key, const std::string& data, const std::string& rs) {
  if (rs.size() != 64) return false;
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(rs.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(rs.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(sig.get(), r, s);
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &der);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  const bool ok = EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
                  EVP_DigestVerify(ctx.get(), der, static_cast<size_t>(len),
                                   reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  OPENSSL_free(der);
  return ok;
}

}  // namespace

TEST_CASE("base64url: RFC 4648 test vectors, URL alphabet, no padding") {
  CHECK(base64url("") == "");
  CHECK(base64url("f") == "Zg");
  CHECK(base64url("fo") == "Zm8");
  CHECK(base64url("foo") == "Zm9v");
  CHECK(base64url("foobar") == "Zm9vYmFy");
  CHECK(base64url(std::string("\xfb\xff\xfe", 3)) == "-__-");
}

TEST_CASE("an EC key survives PEM, its JWK has 32-byte coordinates and a stable thumbprint") {
  const EcKey k = EcKey::generate();
  const EcKey again = EcKey::from_pem(k.pem());
  CHECK(again.jwk() == k.jwk());
  CHECK(again.thumbprint() == k.thumbprint());
  CHECK(k.jwk()["kty"] == "EC");
  CHECK(unbase64url(k.jwk()["x"]).size() == 32);
  CHECK(unbase64url(k.jwk()["y"]).size() == 32);
  CHECK(k.thumbprint().size() == 43);  // SHA-256, base64url without padding
  CHECK(EcKey::generate().thumbprint() != k.thumbprint());
}

TEST_CASE("keys that are not P-256 or not keys are refused with the reason") {
  CHECK_THROWS_WITH_AS(EcKey::from_pem("not a key"), doctest::Contains("PEM private key"), std::runtime_error);
  EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024});
  REQUIRE(rsa);
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, rsa, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  const std::string pem(data, static_cast<size_t>(n));
  BIO_free(b);
  EVP_PKEY_free(rsa);
  CHECK_THROWS_WITH_AS(EcKey::from_pem(pem), "not an ECDSA P-256 key", std::runtime_error);
}

TEST_CASE("a signed request is a flattened JWS whose ES256 signature verifies") {
  const EcKey k = EcKey::generate();
  const auto jws = nlohmann::json::parse(
      sign_request(k, "", "nonce-1", "https://ca/new-acct", {{"termsOfServiceAgreed", true}}));
  const auto header = nlohmann::json::parse(unbase64url(jws["protected"]));
  CHECK(header["alg"] == "ES256");
  CHECK(header["nonce"] == "nonce-1");
  CHECK(header["url"] == "https://ca/new-acct");
  CHECK(header["jwk"] == k.jwk());
  CHECK_FALSE(header.contains("kid"));
  CHECK(nlohmann::json::parse(unbase64url(jws["payload"]))["termsOfServiceAgreed"] == true);
  const std::string sig = unbase64url(jws["signature"]);
  CHECK(verifies(k, jws["protected"].get<std::string>() + "." + jws["payload"].get<std::string>(), sig));
  CHECK_FALSE(verifies(k, jws["protected"].get<std::string>() + ".x", sig));

  // With an account URL: "kid" instead of "jwk"; POST-as-GET has an empty payload.
  const auto get = nlohmann::json::parse(sign_request(k, "https://ca/acct/1", "n2", "https://ca/order/1", nullptr));
  const auto h2 = nlohmann::json::parse(unbase64url(get["protected"]));
  CHECK(h2["kid"] == "https://ca/acct/1");
  CHECK_FALSE(h2.contains("jwk"));
  CHECK(get["payload"] == "");
  CHECK(verifies(k, get["protected"].get<std::string>() + ".", unbase64url(get["signature"])));
}
