#include "notify/message.h"

#include <fmt/format.h>

#include "log/json_text.h"
#include "log/log.h"

namespace sm::notify {
using nlohmann::json;

namespace {

Notice make(std::string event, const json& from, const std::string& host) {
  json f{{"event", event},
         {"time", log::now_rfc3339()},
         {"commit", from.value("commit", "")},
         {"slot", from.value("slot", "")},
         {"previous_commit", from.value("previous_commit", "")},
         {"duration_ms", from.value("duration_ms", 0)},
         {"stage", from.value("stage", "")},
         {"error", from.value("error", "")},
         {"host", host}};
  return {std::move(event), std::move(f)};
}

std::string short_hash(const std::string& commit) { return commit.empty() ? "nothing" : commit.substr(0, 12); }

}  // namespace

std::optional<Notice> notice_of(const app::Event& e, const std::string& host) {
  using app::EventKind;
  switch (e.kind) {
    case EventKind::Started:
      if (e.fields.value("operation", "") == "deploy") return make("deploy_started", e.fields, host);
      return std::nullopt;
    case EventKind::AppExited: {
      json f = e.fields;
      f["error"] = e.fields.value("detail", "");
      return make("app_crashed", f, host);
    }
    case EventKind::WorkerExited: {
      json f = e.fields;
      f["error"] = e.fields.value("detail", "");
      Notice n = make("worker_crashed", f, host);
      n.fields["worker"] = e.fields.value("worker", "");
      return n;
    }
    case EventKind::Finished: {
      const std::string action = e.fields.value("action", "");
      const bool ok = e.fields.value("result", "") == "ok";
      if (action == "deploy") return make(ok ? "deploy_succeeded" : "deploy_failed", e.fields, host);
      if (action == "rollback") return make("rollback", e.fields, host);
      if (action == "auto-rollback") {
        json f = e.fields;
        if (ok) f["error"] = e.fields.value("reason", "");  // why it rolled back
        return make("auto_rollback", f, host);
      }
      if (action == "restart") return make("app_restarted", e.fields, host);
      // Canary (contract §14), notified like deploys: one that failed to come up is a
      // failed deploy.
      if (action == "canary") return make(ok ? "canary_started" : "deploy_failed", e.fields, host);
      if (action == "promote") return make("canary_promoted", e.fields, host);
      if (action == "canary-abort") {
        json f = e.fields;
        if (ok) f["error"] = e.fields.value("reason", "");  // why it ended
        return make("canary_aborted", f, host);
      }
      if (action == "cron" && !ok) {
        json f = e.fields;
        f["error"] = e.fields.value("detail", "");
        Notice n = make("cron_failed", f, host);
        n.fields["job"] = e.fields.value("job", "");
        n.fields["exit_code"] = e.fields.value("exit_code", -1);
        return n;
      }
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

Notice daemon_started(const std::string& commit, const std::string& slot, const std::string& host) {
  return make("daemon_started", json{{"commit", commit}, {"slot", slot}}, host);
}

std::string render(const Notice& n, const std::string& format) {
  if (format != "slack") return log::json_text(n.fields);
  const json& f = n.fields;
  // One of a server's apps: "host/app" wherever the host is named.
  const std::string host = f.value("host", "") + (f.contains("app") ? "/" + f.value("app", "") : ""),
                    commit = short_hash(f.value("commit", ""));
  const std::string slot = f.value("slot", ""), error = f.value("error", "");
  const long long ms = f.value("duration_ms", 0LL);
  std::string text;
  if (n.event == "deploy_started")
    text = fmt::format("{}: deploying {} to slot {}", host, commit, slot);
  else if (n.event == "deploy_succeeded")
    text = fmt::format("{}: deployed {} (slot {}) in {} ms; previous {}", host, commit, slot, ms,
                       short_hash(f.value("previous_commit", "")));
  else if (n.event == "deploy_failed")
    text = fmt::format("{}: the deploy of {} failed at {}: {}", host, commit, f.value("stage", ""), error);
  else if (n.event == "rollback")
    text = error.empty() ? fmt::format("{}: rolled back to {} (slot {})", host, commit, slot)
                         : fmt::format("{}: the rollback to {} failed: {}", host, commit, error);
  else if (n.event == "auto_rollback")
    text = fmt::format("{}: rolled back to {} by itself: {}", host, commit, error);
  else if (n.event == "app_crashed")
    text = fmt::format("{}: the live app ({}, slot {}) exited: {}", host, commit, slot, error);
  else if (n.event == "app_restarted")
    text = error.empty() ? fmt::format("{}: the live app ({}) was started again", host, commit)
                         : fmt::format("{}: starting the live app ({}) again failed: {}", host, commit, error);
  else if (n.event == "worker_crashed")
    text = fmt::format("{}: worker {} ({}) exited: {}", host, f.value("worker", ""), commit, error);
  else if (n.event == "canary_started")
    text = fmt::format("{}: canary {} (slot {}) serves a share of new visitors beside {}", host, commit, slot,
                       short_hash(f.value("previous_commit", "")));
  else if (n.event == "canary_promoted")
    text = error.empty() ? fmt::format("{}: promoted the canary {} (slot {}); previous {}", host, commit, slot,
                                       short_hash(f.value("previous_commit", "")))
                         : fmt::format("{}: promoting the canary {} failed: {}", host, commit, error);
  else if (n.event == "canary_aborted")
    text = fmt::format("{}: the canary {} ended; everyone is on {}: {}", host, commit,
                       short_hash(f.value("previous_commit", "")), error);
  else if (n.event == "cron_failed")
    text = fmt::format("{}: cron job {} ({}) failed: {}", host, f.value("job", ""), commit, error);
  else
    text = fmt::format("{}: slot-machine started; live: {}", host, commit);
  return log::json_text(json{{"text", text}});
}

}  // namespace sm::notify
