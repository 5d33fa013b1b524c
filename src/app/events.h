#pragma once
// The daemon's one way of telling the world what happened. The state machine publishes
// events; the journal, progress streams and systemd's STATUS= subscribe (notifications,
// metrics and the dashboard will too). None of them is called by name from the state
// machine.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

namespace sm::app {

/// What kind of thing happened. The JSON names (name_of) are those of the progress
/// stream (stage, output, health) and of what the API and listeners show.
enum class EventKind {
  Stage,          // an operation entered a stage: {"operation","stage"}; "" when it left the last
  Started,        // a deploy begins (before its checkout): {"operation","commit","slot","previous_commit"}
  Output,         // a line of setup output: {"line"}
  Health,         // a health probe while an app starts: {"attempt","healthy","detail"}
  Finished,       // an operation (or an adoption at start) ended: its journal entry
  AppExited,      // the live app exited unasked: {"slot","commit","detail"}
  HealthChanged,  // the live app's health, as the monitor probes it, flipped: {"slot","healthy","detail"}
  LiveProbe,      // each probe of the live app by the monitor (every second): {"slot","commit","healthy","detail"}
  WorkerExited,   // a worker exited unasked: {"worker","slot","commit","detail","restart_in_s"}
  CanaryProbe,    // each probe of a canary by the monitor, or its exit: {"slot","commit","healthy","exited","detail"}
};

const char* name_of(EventKind kind);

/// One event. `op` numbers the operation it belongs to (0: none), so a progress stream
/// can follow the operation it asked for and nothing else.
struct Event {
  EventKind kind;
  uint64_t op = 0;
  nlohmann::json fields = nlohmann::json::object();
  std::chrono::steady_clock::time_point at = std::chrono::steady_clock::now();
};

/// The hub. publish() calls every listener on the publishing thread, in the order they
/// subscribed; one listener is never called by two threads at once, never after its
/// Subscription is gone, and a listener that throws is logged and dropped. A listener
/// must not subscribe, unsubscribe or publish itself.
class Events {
 public:
  using Listener = std::function<void(const Event&)>;

  /// Ends its listener's subscription when destroyed (or reset()).
  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&&) noexcept = default;
    Subscription& operator=(Subscription&& other) noexcept;
    ~Subscription() { reset(); }
    void reset();

   private:
    friend class Events;
    struct Entry;
    Subscription(Events* hub, std::shared_ptr<Entry> e) : hub_(hub), entry_(std::move(e)) {}
    Events* hub_ = nullptr;
    std::shared_ptr<Entry> entry_;
  };

  [[nodiscard]] Subscription subscribe(Listener listener);
  void publish(const Event& event) const;

 private:
  mutable std::mutex mu_;  // guards entries_ only; never held while a listener runs
  std::vector<std::shared_ptr<Subscription::Entry>> entries_;
};

}  // namespace sm::app
