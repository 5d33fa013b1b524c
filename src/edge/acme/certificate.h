#pragma once
// What the ACME client needs to know about certificates: when one should be renewed,
// whether it covers the configured names, and the request (CSR) for a new one.

#include <ctime>
#include <string>
#include <vector>

#include "edge/acme/jws.h"

namespace sm::edge::acme {

/// The leaf certificate of a PEM chain, as far as renewal cares.
struct CertInfo {
  std::time_t not_before = 0, not_after = 0;
  std::vector<std::string> names;  // subjectAltName DNS entries, lower case
};

/// Reads the first certificate of `pem`. Throws std::runtime_error saying why.
CertInfo read_cert(const std::string& pem);

/// Whether every one of `domains` is a name of the certificate (a "*.x" name covers one
/// label under x).
bool covers(const CertInfo& cert, const std::vector<std::string>& domains);

/// When renewal is due: a third of the certificate's lifetime before it expires (what
/// Let's Encrypt and certbot recommend: day 60 of a 90-day certificate).
std::time_t renew_at(const CertInfo& cert);

/// A PKCS#10 request (DER) for `domains` (the first is the subject's CN, all are
/// subjectAltNames), signed with `key`.
std::string make_csr(const EcKey& key, const std::vector<std::string>& domains);


}  // namespace sm::edge::acme
