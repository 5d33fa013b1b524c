#include "app/auto_rollback.h"

#include <fmt/format.h>

#include "app/app.h"
#include "log/log.h"

namespace sm::app {

std::optional<RollbackWatch::Verdict> RollbackWatch::on(const Event& e) {
  if (e.kind == EventKind::Finished) {
    const std::string action = e.fields.value("action", "");
    const std::string result = e.fields.value("result", "");
    if (action == "deploy" && result == "ok")
      armed_ = Armed{e.fields.value("slot", ""), e.fields.value("commit", ""), e.at, e.at + window_, 0};
    else if (result == "ok" || result == "failed")  // something else changed what is live
      armed_.reset();
    return std::nullopt;
  }
  if (!armed_) return std::nullopt;
  if (e.at > armed_->until) {
    armed_.reset();
    return std::nullopt;
  }
  if ((e.kind != EventKind::AppExited && e.kind != EventKind::LiveProbe) ||
      e.fields.value("slot", "") != armed_->slot || e.fields.value("commit", "") != armed_->commit)
    return std::nullopt;
  const auto after = std::chrono::duration_cast<std::chrono::seconds>(e.at - armed_->since).count();
  std::string reason;
  if (e.kind == EventKind::AppExited) {
    reason = fmt::format("the app deployed {} s ago {} (auto_rollback_s={})", after, e.fields.value("detail", "exited"),
                         window_.count());
  } else if (e.fields.value("healthy", false)) {
    armed_->failures = 0;
  } else if (++armed_->failures >= kFailedProbes) {
    reason = fmt::format("the app deployed {} s ago failed {} health probes in a row ({}) (auto_rollback_s={})", after,
                         kFailedProbes, e.fields.value("detail", ""), window_.count());
  }
  if (reason.empty()) return std::nullopt;
  Verdict v{armed_->slot, armed_->commit, reason};
  armed_.reset();
  return v;
}

AutoRollback::AutoRollback(App& daemon, int window_s) : app_(daemon), watch_(std::chrono::seconds(window_s)) {
  verdicts_.start([this](RollbackWatch::Verdict& v) { roll_back(v); });
  events_ = daemon.events().subscribe([this](const Event& e) {
    if (e.kind != EventKind::Finished && e.kind != EventKind::AppExited && e.kind != EventKind::LiveProbe) return;
    std::optional<RollbackWatch::Verdict> v;
    {
      std::lock_guard lock(mu_);
      v = watch_.on(e);
    }
    if (v) verdicts_.put(std::move(*v));
  });
}

void AutoRollback::stop() {
  events_.reset();
  verdicts_.close();
}

void AutoRollback::roll_back(const RollbackWatch::Verdict& v) {
  const auto r = app_.auto_rollback(v.slot, v.commit, v.reason);
  if (r.status != OpStatus::Ok && r.status != OpStatus::Failed && r.status != OpStatus::ShuttingDown)
    log::info("auto-rollback not done: {}", r.error);
}

}  // namespace sm::app
