#pragma once
// The one seam between the deploy state machine and how traffic reaches a slot.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace sm::app {

/// The ports one app process is given (PORT and INTERNAL_PORT).
struct Ports {
  int port = 0;
  int internal_port = 0;
};

/// Maintenance (contract §14): what the app's requests get instead of the app (503).
struct MaintenancePage {
  std::string html, text;
  int retry_after_s = 60;
};

/// Pause (contract §14): since when, and how many requests wait.
struct PauseState {
  std::string since;
  int held = 0;
};

/// Canary (contract §14): requests routed to each side since it began.
struct CanaryCounts {
  uint64_t requests_new = 0, requests_old = 0;
};

/// Router owns the public port. Without the proxy the app binds it itself (so the old
/// app must be drained before the new one starts); with the proxy the daemon binds it
/// and moves traffic atomically. The deploy sequence is written once against this.
class Router {
 public:
  virtual ~Router() = default;
  /// "direct" or "proxy", for status and logs.
  virtual const char* mode() const = 0;
  /// Fixed config ports (direct) or fresh free ones (proxy).
  virtual Ports ports_for_new_process() = 0;
  /// True only when the old app must stop before the new one can bind.
  virtual bool must_drain_before_start() const = 0;
  /// Routes new requests to the app listening on `ports` from now on.
  virtual void switch_to(const Ports& ports) = 0;
  /// Waits, until `deadline` at most or until `stop()` says so, for requests in flight
  /// to the app on `ports`.
  virtual void wait_in_flight(const Ports& ports, std::chrono::steady_clock::time_point deadline,
                              const std::function<bool()>& stop) = 0;
  /// Puts the app's requests in maintenance (`page`) or back (nullopt). False when this
  /// mode cannot: without the proxy nothing stands between clients and the app.
  virtual bool set_maintenance(const std::optional<MaintenancePage>& page) = 0;
  /// Holds the app's new requests until resume() or `timeout_s`. Nothing when this mode
  /// cannot (direct); false when paused already.
  virtual std::optional<bool> pause(int timeout_s) = 0;
  /// Nothing when this mode cannot; false when not paused.
  virtual std::optional<bool> resume() = 0;
  virtual std::optional<PauseState> pause_state() const = 0;
  /// Splits the app's visitors: `percent`% of new ones to the process on `ports`, the
  /// rest to live, each kept on its side by a cookie; `percent` 0 ends it, and so does
  /// switch_to(ports). False when this mode cannot.
  virtual bool set_canary(const Ports& ports, int percent) = 0;
  virtual std::optional<CanaryCounts> canary_counts() const = 0;
};

/// Direct mode (--no-proxy): the app binds the configured ports itself.
class DirectRouter : public Router {
 public:
  explicit DirectRouter(Ports fixed) : fixed_(fixed) {}
  const char* mode() const override { return "direct"; }
  Ports ports_for_new_process() override { return fixed_; }
  bool must_drain_before_start() const override { return true; }
  void switch_to(const Ports&) override {}
  void wait_in_flight(const Ports&, std::chrono::steady_clock::time_point,
                      const std::function<bool()>&) override {}
  bool set_maintenance(const std::optional<MaintenancePage>&) override { return false; }
  std::optional<bool> pause(int) override { return std::nullopt; }
  std::optional<bool> resume() override { return std::nullopt; }
  std::optional<PauseState> pause_state() const override { return std::nullopt; }
  bool set_canary(const Ports&, int) override { return false; }
  std::optional<CanaryCounts> canary_counts() const override { return std::nullopt; }

 private:
  Ports fixed_;
};

}  // namespace sm::app
