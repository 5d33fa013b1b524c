#pragma once
// An ACME client (RFC 8555) for one job: get a certificate for a list of DNS names,
// proving control of each with the HTTP-01 challenge, which the proxy answers on the
// public port from a Challenges table. Blocking; run on a thread of its own.

#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "edge/acme/jws.h"

namespace sm::edge::acme {

/// Why an order did not end in a certificate: the step, the URL and the CA's own words.
class AcmeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The HTTP-01 answers pending now: token → key authorization. Written by the client,
/// read by the proxy's event loop.
class Challenges {
 public:
  void put(const std::string& token, const std::string& key_authorization);
  void erase(const std::string& token);
  std::optional<std::string> find(std::string_view token) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string, std::less<>> pending_;
};

/// Where the CA is and who asks.
struct Settings {
  std::string directory_url;
  std::filesystem::path ca_file;  // empty: the system's trust store
  std::string email;              // empty: an account without contact
};

/// A certificate chain (PEM, leaf first) and its private key (PEM).
struct Issued {
  std::string chain_pem, key_pem;
};

/// Orders a certificate for `domains` with the account of `account_key` (registered on
/// first use; the same key finds the same account again), answering the challenges
/// through `challenges`. `stopped` is asked between steps and while polling: when it
/// says true, the order is abandoned (AcmeError "stopped"). Throws AcmeError.
Issued obtain(const Settings& settings, const EcKey& account_key, const std::vector<std::string>& domains,
              Challenges& challenges, const std::function<bool()>& stopped);

}  // namespace sm::edge::acme
