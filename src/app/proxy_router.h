#pragma once
// Proxy mode's Router: fresh ports per app process, the proxy moves traffic.

#include <set>
#include <string>

#include "app/router.h"
#include "proxy/proxy.h"

namespace sm::app {

/// True when nothing is bound to `port` on any address.
bool port_is_free(int port);

/// Picks a port nothing is bound to (checked by binding it on all addresses) from
/// [lo, hi], skipping `exclude` and every port this process picked in the last minute
/// (several apps deploying at once must not be given the same port before either binds
/// it). Throws std::runtime_error when none is free.
int pick_free_port(int lo, int hi, const std::set<int>& exclude);

/// Proxy mode: every app process gets its own free PORT and INTERNAL_PORT from
/// [lo, hi] (by default 10000-19999: below the kernel's ephemeral range, so outgoing
/// connections cannot take them); the proxy switches traffic and waits for in-flight
/// requests before the old app is drained.
class ProxyRouter : public Router {
 public:
  /// `one_port`: the config's internal_port equals port, so the app gets one port for
  /// both (it serves health on its main port). `app`: one of several apps the proxy
  /// routes by host (contract §13), which always get one port; "" for the only one.
  ProxyRouter(proxy::Proxy& proxy, std::set<int> reserved, bool one_port, std::string app = {},
              int lo = 10000, int hi = 19999)
      : proxy_(proxy), reserved_(std::move(reserved)), one_port_(one_port || !app.empty()), app_(std::move(app)),
        lo_(lo), hi_(hi) {}
  const char* mode() const override { return "proxy"; }
  Ports ports_for_new_process() override;
  bool must_drain_before_start() const override { return false; }
  void switch_to(const Ports& ports) override {
    if (app_.empty())
      proxy_.switch_to(ports.port, ports.internal_port);
    else
      proxy_.switch_app(app_, ports.port);
  }
  void wait_in_flight(const Ports& ports, std::chrono::steady_clock::time_point deadline,
                      const std::function<bool()>& stop) override {
    proxy_.wait_idle(ports.port, deadline, stop);
    proxy_.wait_idle(ports.internal_port, deadline, stop);
  }
  bool set_maintenance(const std::optional<MaintenancePage>& page) override {
    proxy_.set_maintenance(app_, page ? std::make_shared<const proxy::Maintenance>(
                                            proxy::Maintenance{page->html, page->text, page->retry_after_s})
                                      : nullptr);
    return true;
  }
  std::optional<bool> pause(int timeout_s) override { return proxy_.pause(app_, std::chrono::seconds(timeout_s)); }
  std::optional<bool> resume() override { return proxy_.resume(app_); }
  std::optional<PauseState> pause_state() const override {
    const auto p = proxy_.paused(app_);
    if (!p) return std::nullopt;
    return PauseState{p->since, p->held};
  }
  bool set_canary(const Ports& ports, int percent) override {
    proxy_.set_canary(app_, ports.port, percent);
    return true;
  }
  std::optional<CanaryCounts> canary_counts() const override {
    const auto c = proxy_.canary(app_);
    if (!c) return std::nullopt;
    return CanaryCounts{c->requests_new, c->requests_old};
  }

 private:
  proxy::Proxy& proxy_;
  std::set<int> reserved_;  // the configured ports: never handed to an app
  bool one_port_;
  std::string app_;
  int lo_, hi_;
};

}  // namespace sm::app
