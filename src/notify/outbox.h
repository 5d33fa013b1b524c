#pragma once
// The notification outbox (contract §9, <data>/outbox/): every notice for a target is a
// file there until it has been delivered or given up on, so a restarted daemon delivers
// what it had not. Each target has its own worker thread: a target that hangs delays
// only its own notices, and nothing here ever waits on a deploy or delays one.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "notify/message.h"

namespace sm::notify {

/// Tries of one delivery, and the waits between them: 2, 4, 8, 16, 32 s (62 s in all).
inline constexpr int kTries = 6;
std::chrono::seconds retry_delay(int failed_tries);

/// A target as configured, with its secret read ("" when unsigned).
struct Target {
  config::Config::NotifyTarget config;
  std::string secret;
  bool wants(const std::string& event) const;
};

/// One attempt's outcome: "" when the target took it (2xx), else why not.
using Sender = std::function<std::string(const Target&, const std::string& event, const std::string& delivery,
                                         const std::string& body)>;

/// POSTs over HTTP(S) (cpp-httplib; 5 s to connect, 10 s to answer) with the contract's
/// headers; the default Sender.
std::string post(const Target& t, const std::string& event, const std::string& delivery, const std::string& body);

class Outbox {
 public:
  /// Loads what `dir` holds from an earlier run (files for URLs no target has any more
  /// are dropped, with a log line) and starts one worker per target.
  Outbox(std::filesystem::path dir, std::vector<Target> targets, Sender send = post);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  /// Queues `n` for every target that wants it; returns at once (the workers write the
  /// files and deliver).
  void post_notice(const Notice& n);
  /// Ends the workers; what is not delivered stays in the directory for the next start.
  void stop();

  /// Deliveries made, and given up, so far (tests, bench).
  int delivered() const;
  int dropped() const;

 private:
  struct Delivery {
    std::string id, event, body;
    int tries = 0;
    std::chrono::steady_clock::time_point due;
  };
  struct Worker;
  void run(Worker& w);
  void save(const Worker& w, const Delivery& d) const;
  void forget(const Delivery& d) const;

  std::filesystem::path dir_;
  Sender send_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace sm::notify
