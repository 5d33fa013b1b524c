#include "daemon/crash_restart.h"

#include <algorithm>

#include "daemon/daemon.h"
#include "log/log.h"

namespace sm::daemon {

std::chrono::seconds Backoff::next(Clock::time_point now) {
  using std::chrono::seconds;
  if (!last_ || now - *last_ >= seconds(60))
    delay_ = seconds(1);
  else
    delay_ = std::min(delay_ * 2, seconds(60));
  return delay_;
}

CrashRestart::CrashRestart(Daemon& daemon) : daemon_(daemon) {
  exits_ = daemon.events().subscribe([this](const Event& e) {
    if (e.kind != EventKind::AppExited) return;
    std::lock_guard lock(mu_);
    pending_ = Crash{e.fields.value("slot", ""), e.fields.value("commit", "")};
    cv_.notify_all();
  });
  thread_ = std::thread([this] { run(); });
}

void CrashRestart::stop() {
  exits_.reset();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool CrashRestart::sleep(std::chrono::seconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [&] { return stop_; });
}

void CrashRestart::run() {
  for (;;) {
    Crash crash;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || pending_; });
      if (stop_) return;
      crash = *pending_;
      pending_.reset();
    }
    for (;;) {  // until it is running again, or no longer ours to restart
      const auto wait = backoff_.next(Backoff::Clock::now());
      log::info("live app in slot {} exited; restarting it in {} s (restart: on-failure)",
                crash.slot, wait.count());
      if (!sleep(wait)) return;
      const auto r = daemon_.restart_crashed(crash.slot, crash.commit);
      backoff_.restarted(Backoff::Clock::now());
      if (r.status != OpStatus::Failed) break;  // restarted, not needed any more, or stopping
    }
  }
}

}  // namespace sm::daemon
