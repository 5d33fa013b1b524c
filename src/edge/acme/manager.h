#pragma once
// Keeps the public side's certificate from an ACME CA: at start it uses the one stored
// under <data>/tls/ when it still serves, and on its own thread obtains one when there is
// none, renews it when a third of its life is left, and hands each new one to the proxy.
// A failure (CA down, challenge refused) is logged with the CA's reason and retried with
// backoff; it never stops HTTP serving or deploys.

#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "edge/acme/client.h"

namespace sm::edge::acme {

struct ManagerOptions {
  Settings settings;
  std::vector<std::string> domains;
  std::filesystem::path dir;  // <data>/tls
  Challenges* challenges = nullptr;  // where the HTTP-01 answers go (the proxy reads them)
  /// Serve this certificate (PEM chain) and key files from now on; throws when unusable.
  std::function<void(const std::filesystem::path& cert, const std::filesystem::path& key)> install;
  std::string log_name;  // one of a server's apps: named in its log lines
};

/// Files under `dir`: the account key, the certificate chain and its key (both keys mode
/// 0600), and what the certificate was ordered for (CA and names).
struct Stored {
  std::filesystem::path account_key, cert, key, order;
  explicit Stored(const std::filesystem::path& dir)
      : account_key(dir / "account.key"), cert(dir / "cert.pem"), key(dir / "key.pem"), order(dir / "order.json") {}
};

/// Seconds to wait after the n-th failure in a row (n from 1): 5, 10, 20 ... capped at
/// an hour.
long long retry_delay_s(int failures);

class Manager {
 public:
  /// Reads (or creates) the account key. Throws std::runtime_error naming the file when
  /// <data>/tls cannot be used.
  explicit Manager(ManagerOptions opts);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  /// The stored certificate and key when they can be served now (unexpired, for these
  /// names, from this CA); nullopt when one must be obtained first.
  std::optional<std::pair<std::filesystem::path, std::filesystem::path>> usable() const;

  /// Starts the thread that obtains and renews.
  void start();

 private:
  void run();
  /// When the stored certificate must be replaced (now when there is none usable).
  std::time_t due() const;
  /// One order; writes the files and installs them. Throws.
  void renew();

  ManagerOptions opts_;
  Stored files_;
  EcKey account_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sm::edge::acme
