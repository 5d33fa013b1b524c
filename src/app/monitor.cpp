#include "app/app.h"

#include "app/slot_logs.h"
#include "health/health.h"
#include "log/log.h"
#include "process/spawn.h"

#include "app/app_internal.h"

namespace sm::app {
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

void App::monitor() {
  const log::Scope scope(paths_.log_name);
  auto next_probe = Clock::now() + milliseconds(1000);
  for (;;) {
    reaper_.wait_change(reaper_.generation(), std::min(next_probe, Clock::now() + milliseconds(1000)));
    if (monitor_stop_) return;

    int probe_port = 0;
    uint64_t generation = 0;
    std::optional<Event> exited;
    {
      std::lock_guard lock(mu_);
      Running* app = live_ ? live_->app.get() : nullptr;
      if (app && !app->exit_reported) {
        if (auto st = exit_of(*app)) {
          app->exit_reported = true;
          healthy_ = false;
          const std::string how = app->group.adopted ? "exited" : process::describe_exit(*st);
          log::info("live app in slot {} {}; status is now unhealthy", live_->name, how);
          exited = Event{EventKind::AppExited, 0,
                         {{"slot", std::string(1, live_->name)}, {"commit", live_->commit}, {"detail", how}}};
        } else if (Clock::now() >= next_probe && operation_.empty()) {
          probe_port = app->ports.internal_port;
          generation = live_generation_;
        }
      }
    }
    if (exited) events_.publish(*exited);
    if (auto c = canary_check(Clock::now() >= next_probe)) events_.publish(*c);
    if (workers_->tend()) persist();
    if (Clock::now() >= next_probe) {
      next_probe = Clock::now() + milliseconds(1000);
      if (cfg_.standby != "off") tend_standby();
      for (const Slot& s : slots_) {
        try {
          if (rotate_if_needed(log_path(s), static_cast<std::uintmax_t>(cfg_.log_max_bytes), cfg_.log_keep))
            append_log(s, fmt::format("log rotated (over log_max_bytes={})", cfg_.log_max_bytes));
        } catch (const std::exception& e) {
          log::info("warning: {}", e.what());
        }
      }
    }
    if (!probe_port) continue;

    auto p = health::probe_http(probe_port, cfg_.health_endpoint, milliseconds(1000));
    std::optional<Event> flipped, probed;
    {
      std::lock_guard lock(mu_);
      if (generation != live_generation_ || !live_ || !live_->app || live_->app->exit_reported)
        continue;
      probed = Event{EventKind::LiveProbe, 0,
                     {{"slot", std::string(1, live_->name)}, {"commit", live_->commit},
                      {"healthy", p.healthy}, {"detail", p.detail}}};
      if (healthy_ != p.healthy) {
        log::info("live app in slot {} is now {} ({})", live_->name,
                  p.healthy ? "healthy" : "unhealthy", p.detail);
        flipped = Event{EventKind::HealthChanged, 0,
                        {{"slot", std::string(1, live_->name)}, {"healthy", p.healthy}, {"detail", p.detail}}};
      }
      healthy_ = p.healthy;
    }
    if (flipped) events_.publish(*flipped);
    events_.publish(*probed);
  }
}

std::optional<Event> App::canary_check(bool probe_now) {
  int port = 0;
  nlohmann::json fields;
  {
    std::lock_guard lock(mu_);
    Running* app = canary_ && operation_.empty() ? canary_->slot->app.get() : nullptr;
    if (!app || app->exit_reported) return std::nullopt;
    fields = {{"slot", std::string(1, canary_->slot->name)}, {"commit", canary_->commit}};
    if (auto st = exit_of(*app)) {
      app->exit_reported = true;
      fields.update({{"healthy", false}, {"exited", true}, {"detail", process::describe_exit(*st)}});
      log::info("the canary in slot {} {}", canary_->slot->name, fields["detail"].get<std::string>());
      return Event{EventKind::CanaryProbe, 0, std::move(fields)};
    }
    if (!probe_now) return std::nullopt;
    port = app->ports.internal_port;
  }
  const auto p = health::probe_http(port, cfg_.health_endpoint, milliseconds(1000));
  fields.update({{"healthy", p.healthy}, {"exited", false}, {"detail", p.detail}});
  return Event{EventKind::CanaryProbe, 0, std::move(fields)};
}

void App::stop_monitor() {
  if (!monitor_.joinable()) return;
  monitor_stop_ = true;
  reaper_.wake();
  monitor_.join();
}

}  // namespace sm::app
