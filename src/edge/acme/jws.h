#pragma once
// The signing half of an ACME client (RFC 8555 §6.2, RFC 7515, RFC 7638): an ECDSA
// P-256 account key, its JWK and thumbprint, and requests signed as flattened JWS with
// ES256. OpenSSL does the cryptography; this file only arranges bytes.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include <openssl/evp.h>

namespace sm::edge::acme {

/// Base64url without padding (RFC 4648 §5), as JOSE uses it.
std::string base64url(std::string_view bytes);

/// An ECDSA P-256 private key (the ACME account key, or a certificate's key).
class EcKey {
 public:
  /// A fresh key. Throws std::runtime_error when OpenSSL cannot make one.
  static EcKey generate();
  /// The key in `pem` (PKCS#8 or SEC1, unencrypted). Throws std::runtime_error saying why
  /// when it is not a P-256 key.
  static EcKey from_pem(const std::string& pem);

  /// The private key as unencrypted PKCS#8 PEM.
  std::string pem() const;
  /// The public key as a JWK (RFC 7518 §6.2): {"crv","kty","x","y"}.
  nlohmann::json jwk() const;
  /// RFC 7638 thumbprint of jwk(), base64url: what a key authorization ends with.
  std::string thumbprint() const;
  /// ES256 signature of `data`: R and S, 32 bytes each (not DER).
  std::string sign(std::string_view data) const;
  EVP_PKEY* get() const { return key_.get(); }

 private:
  struct Free {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  };
  explicit EcKey(EVP_PKEY* k) : key_(k) {}
  std::unique_ptr<EVP_PKEY, Free> key_;
};

/// A flattened JWS (RFC 7515 §7.2.2) of `payload` for `url` with `nonce`, naming the
/// account by `kid` or, when `kid` is empty (newAccount), by its JWK. A null `payload`
/// is "POST-as-GET" (an empty payload).
std::string sign_request(const EcKey& key, const std::string& kid, const std::string& nonce,
                         const std::string& url, const nlohmann::json& payload);

}  // namespace sm::edge::acme
