#pragma once
// Certificate and key files given in the config, checked before anything serves with
// them: a daemon that cannot do TLS must refuse to start, never fall back to plain text.

#include <filesystem>
#include <string>

namespace sm::edge {

/// A certificate and its private key, PEM files.
struct CertFiles {
  std::filesystem::path cert, key;
};

/// Throws config::ConfigError naming `field` and the file when a file cannot be read, is
/// not PEM, the certificate has expired or is not valid yet, or the key is not the
/// certificate's. Returns the certificate's expiry (RFC 3339), for the log.
std::string check_cert_files(const CertFiles& files, const std::string& field);

}  // namespace sm::edge
