#include "app/events.h"

#include <algorithm>

#include "log/log.h"

namespace sm::app {

const char* name_of(EventKind kind) {
  switch (kind) {
    case EventKind::Stage: return "stage";
    case EventKind::Started: return "started";
    case EventKind::Output: return "output";
    case EventKind::Health: return "health";
    case EventKind::Finished: return "finished";
    case EventKind::AppExited: return "app_exited";
    case EventKind::HealthChanged: return "health_changed";
    case EventKind::LiveProbe: return "live_probe";
    case EventKind::WorkerExited: return "worker_exited";
    case EventKind::CanaryProbe: return "canary_probe";
  }
  return "unknown";
}

struct Events::Subscription::Entry {
  std::mutex mu;  // held while the listener runs: one call at a time, none after reset()
  Listener listener;
  bool active = true;
};

Events::Subscription& Events::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    reset();
    hub_ = other.hub_;
    entry_ = std::move(other.entry_);
  }
  return *this;
}

void Events::Subscription::reset() {
  if (!entry_) return;
  {
    std::lock_guard lock(entry_->mu);  // waits for a call in progress
    entry_->active = false;
    entry_->listener = nullptr;
  }
  std::lock_guard lock(hub_->mu_);
  std::erase(hub_->entries_, entry_);
  entry_.reset();
}

Events::Subscription Events::subscribe(Listener listener) {
  auto e = std::make_shared<Subscription::Entry>();
  e->listener = std::move(listener);
  std::lock_guard lock(mu_);
  entries_.push_back(e);
  return Subscription(this, std::move(e));
}

void Events::publish(const Event& event) const {
  std::vector<std::shared_ptr<Subscription::Entry>> now;
  {
    std::lock_guard lock(mu_);
    now = entries_;
  }
  for (auto& e : now) {
    std::lock_guard lock(e->mu);
    if (!e->active) continue;
    try {
      e->listener(event);
    } catch (const std::exception& ex) {  // a listener's failure never fails the daemon
      log::info("warning: a listener of {} events failed and was dropped: {}", name_of(event.kind),
                ex.what());
      e->active = false;
    }
  }
}

}  // namespace sm::app
