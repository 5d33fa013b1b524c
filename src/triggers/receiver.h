#pragma once
// The webhook receiver (contract §9, config "webhooks"): answers POSTs under the
// configured path on the proxy's event loop, never waiting for a deploy, and deploys
// accepted pushes one at a time on its own thread. Pushes that arrive while one deploys
// coalesce: the newest waits, the ones it replaces are dropped. A delivery id seen
// before is answered and not deployed again; each client address may send
// kBurst deliveries at once and kPerSecond a second after that (429 beyond).

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "proxy/proxy.h"
#include "threads/inbox.h"
#include "triggers/webhook.h"

namespace sm::triggers {

class Receiver {
 public:
  static constexpr double kBurst = 20, kPerSecond = 5;
  static constexpr size_t kRememberedDeliveries = 1000;

  /// Runs one deploy of `commit`; returns "" when it succeeded, else why it did not.
  using Deploy = std::function<std::string(const std::string& commit)>;

  /// `path`: the configured prefix ("/.slot-machine/hooks"); `secret` signs deliveries;
  /// pushes to `branch` deploy. `app`: one of a server's apps, named in the log lines.
  Receiver(std::string path, std::string secret, std::string branch, std::string app = "");
  ~Receiver() { stop(); }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  /// Starts deploying what is accepted, with `deploy` (until then deliveries get 503).
  void start(Deploy deploy);
  /// Deliveries get 503 from now on; waits for a deploy it runs to end. Idempotent.
  void stop();

  /// The answer to one request under the path (Options::local): never blocks.
  proxy::LocalAnswer handle(const proxy::LocalRequest& request);

  /// What has happened so far, for tests and status: accepted deliveries, deploys run.
  struct Counts {
    int accepted = 0, coalesced = 0, deployed = 0;
  };
  Counts counts() const;

 private:
  struct Queued {
    Push push;
    Forge forge;
  };
  /// Whether `peer` may send one more delivery now (takes it from its bucket); logs the
  /// first refusal of a run.
  bool admit(const std::string& peer, std::chrono::steady_clock::time_point now);
  /// Takes an accepted push: queues it, replacing a waiting one. The 202 answer.
  proxy::LocalAnswer accept(Queued q);
  void deploy(const Queued& q);

  const std::string path_, secret_, branch_, app_;
  mutable std::mutex mu_;
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
    bool refusing = false;  // its last delivery got 429 (logged once per run of them)
  };
  std::map<std::string, Bucket> buckets_;
  std::set<std::string> seen_;        // delivery ids, the newest kRememberedDeliveries
  std::deque<std::string> seen_order_;
  bool started_ = false, stopped_ = false;
  Counts counts_;
  Deploy deploy_;
  threads::Inbox<Queued> pushes_{threads::Keep::Latest};  // one deploys, the newest waits
};

}  // namespace sm::triggers
