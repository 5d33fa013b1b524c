#include "app/canary_watch.h"

#include <fmt/format.h>

#include "app/app.h"
#include "log/log.h"

namespace sm::app {

std::optional<CanaryWatch::Verdict> CanaryWatch::on(const Event& e) {
  if (e.kind == EventKind::Finished && e.fields.value("action", "") == "canary") {  // a new canary: counted afresh
    commit_.clear();
    return std::nullopt;
  }
  if (e.kind != EventKind::CanaryProbe) return std::nullopt;
  const std::string commit = e.fields.value("commit", "");
  if (commit != commit_) {
    commit_ = commit;
    failures_ = 0;
    told_ = false;
  }
  if (told_) return std::nullopt;
  std::string reason;
  if (e.fields.value("exited", false))
    reason = fmt::format("the canary stopped: {}", e.fields.value("detail", "exited"));
  else if (e.fields.value("healthy", false))
    failures_ = 0;
  else if (++failures_ >= kFailedProbes)
    reason = fmt::format("the canary failed {} health probes in a row ({})", kFailedProbes, e.fields.value("detail", ""));
  if (reason.empty()) return std::nullopt;
  told_ = true;
  return Verdict{commit, reason};
}

CanaryGuard::CanaryGuard(App& app) : app_(app) {
  verdicts_.start([this](CanaryWatch::Verdict& v) {
    const auto r = app_.abort_canary(v.commit, v.reason);
    if (r.status != OpStatus::Ok && r.status != OpStatus::Failed && r.status != OpStatus::ShuttingDown)
      log::info("canary-abort not done: {}", r.error);
  });
  events_ = app.events().subscribe([this](const Event& e) {
    if (e.kind != EventKind::Finished && e.kind != EventKind::CanaryProbe) return;
    std::optional<CanaryWatch::Verdict> v;
    {
      std::lock_guard lock(mu_);
      v = watch_.on(e);
    }
    if (v) verdicts_.put(std::move(*v));
  });
}

void CanaryGuard::stop() {
  events_.reset();
  verdicts_.close();
}

}  // namespace sm::app
