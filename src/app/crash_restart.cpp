#include "app/crash_restart.h"

#include <algorithm>

#include "app/app.h"
#include "log/log.h"

namespace sm::app {

std::chrono::seconds Backoff::next(Clock::time_point now) {
  using std::chrono::seconds;
  if (!last_ || now - *last_ >= seconds(60))
    delay_ = seconds(1);
  else
    delay_ = std::min(delay_ * 2, seconds(60));
  return delay_;
}

CrashRestart::CrashRestart(App& daemon) : app_(daemon) {
  crashes_.start([this](Crash& c) { restart(c); });
  exits_ = daemon.events().subscribe([this](const Event& e) {
    if (e.kind == EventKind::AppExited) crashes_.put(Crash{e.fields.value("slot", ""), e.fields.value("commit", "")});
  });
}

void CrashRestart::stop() {
  exits_.reset();
  crashes_.close();
}

void CrashRestart::restart(const Crash& crash) {
  for (;;) {
    const auto wait = backoff_.next(Backoff::Clock::now());
    log::info("live app in slot {} exited; restarting it in {} s (restart: on-failure)", crash.slot, wait.count());
    if (!crashes_.sleep_for(wait)) return;  // stopping
    const auto r = app_.restart_crashed(crash.slot, crash.commit);
    backoff_.restarted(Backoff::Clock::now());
    if (r.status != OpStatus::Failed) return;  // restarted, not needed any more, or stopping
  }
}

}  // namespace sm::app
