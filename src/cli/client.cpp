#include "cli/client.h"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <nlohmann/json.hpp>

#include "cli/client_http.h"
#include "git/git.h"
#include "log/json_text.h"
#include "process/process_group.h"

namespace sm::cli {
using nlohmann::json;

namespace {

/// The full hash of HEAD in the repository around the working directory; nullopt after
/// saying why on `err`.
std::optional<std::string> head_commit(std::ostream& err) {
  try {
    git::Library lib;
    return git::Repository::discover(std::filesystem::current_path()).resolve("HEAD");
  } catch (const git::GitError& e) {
    err << fmt::format("slot-machine: cannot find the commit to deploy: {}; run deploy inside "
                       "the app's repository or name a COMMIT\n",
                       e.what());
    return std::nullopt;
  }
}

std::string short_hash(const std::string& h) { return h.empty() ? "(none)" : h.substr(0, 12); }

/// Prints an operation's outcome. `op` names it in errors ("deploy"), `done` in the
/// success line ("deployed").
int finish_op(const ClientOptions& o, const char* op, const char* done, const Reply& r,
              std::ostream& out, std::ostream& err) {
  if (!r.failure.empty()) {
    err << unreachable(o, r.failure);
    return 1;
  }
  if (o.json) out << log::json_text(r.body, 2) << "\n";
  // Said whatever the outcome: the two-slot trade-off must never be silent.
  const std::string replaced = str(r.body, "previous_replaced");
  const std::string lost = replaced.empty() ? "" : fmt::format(
      "note: the rollback target {} was in the slot this {} used; there is nothing to roll back to now "
      "(see \"Two slots, one rollback target\" in the README)\n", short_hash(replaced), op);
  if (r.status == 200 && r.body.value("success", false)) {
    if (!o.json && r.body.value("canary_percent", 0) > 0) {
      out << fmt::format("{}canary {} in slot {}: {}% of new visitors, the rest stay on {}{}\n"
                         "promote it with `slot-machine promote`, end it with `slot-machine rollback`; "
                         "`slot-machine status` counts each side's requests\n",
                         o.tty ? "\033[1;32m" : "", str(r.body, "commit"), str(r.body, "slot"),
                         r.body.value("canary_percent", 0), short_hash(str(r.body, "previous_commit")),
                         o.tty ? "\033[0m" : "")
          << lost;
    } else if (!o.json && r.body.value("canary_ended", false)) {
      out << fmt::format("{}ended the canary {}: everyone is on {}{}\n", o.tty ? "\033[1;32m" : "",
                         short_hash(str(r.body, "commit")), short_hash(str(r.body, "previous_commit")),
                         o.tty ? "\033[0m" : "");
    } else if (!o.json && r.body.value("unchanged", false)) {
      out << fmt::format("{} is already live and healthy in slot {}: nothing done (--force redeploys it)\n",
                         str(r.body, "commit"), str(r.body, "slot"));
    } else if (!o.json) {
      out << fmt::format("{}{} {} in slot {}", o.tty ? "\033[1;32m" : "", done, str(r.body, "commit"),
                         str(r.body, "slot"));
      if (!str(r.body, "previous_commit").empty())
        out << fmt::format(" (previous: {})", short_hash(str(r.body, "previous_commit")));
      if (r.took_ms >= 0) out << fmt::format(" in {} ms", r.took_ms);
      out << (o.tty ? "\033[0m\n" : "\n") << lost;
    }
    return 0;
  }
  std::string error = str(r.body, "error");
  err << fmt::format("slot-machine: {} failed (HTTP {}){}: {}\n", op, r.status,
                     o.remote ? " on " + o.url : "", error.empty() ? log::json_text(r.body) : error);
  if (!o.json) err << lost;
  return 1;
}

}  // namespace

int deploy_command(const ClientOptions& o, const std::optional<std::string>& commit,
                   std::ostream& out, std::ostream& err, const std::string& quarantine) {
  if (!reachable(o, err)) return 1;
  std::optional<std::string> found = commit ? commit : head_commit(err);
  if (!found) return 1;
  const std::string rev = *found;
  // Deploys include the setup command, which may take long: wait up to a day.
  json request{{"commit", rev}};
  if (!quarantine.empty()) request["quarantine"] = quarantine;
  if (o.force) request["force"] = true;
  if (o.canary_percent) request["canary_percent"] = o.canary_percent;
  const std::string body = log::json_text(request);
  if (o.json) return finish_op(o, "deploy", "deployed", call(o, "POST", app_path(o, "/deploy"), body, 86400), out, err);
  return finish_op(o, "deploy", "deployed",
                   call_streaming(o, app_path(o, "/deploy"), body, fmt::format("deploying {}", rev).c_str(), out),
                   out, err);
}

int rollback_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  if (!reachable(o, err)) return 1;
  if (o.json) return finish_op(o, "rollback", "rolled back to", call(o, "POST", app_path(o, "/rollback"), "{}", 86400), out, err);
  return finish_op(o, "rollback", "rolled back to",
                   call_streaming(o, app_path(o, "/rollback"), "{}", "rolling back", out), out, err);
}

int promote_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  if (!reachable(o, err)) return 1;
  if (o.json) return finish_op(o, "promote", "promoted", call(o, "POST", app_path(o, "/promote"), "{}", 86400), out, err);
  return finish_op(o, "promote", "promoted",
                   call_streaming(o, app_path(o, "/promote"), "{}", "promoting the canary", out), out, err);
}

int restart_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  if (!reachable(o, err)) return 1;
  if (o.json) return finish_op(o, "restart", "restarted", call(o, "POST", app_path(o, "/restart"), "{}", 86400), out, err);
  return finish_op(o, "restart", "restarted",
                   call_streaming(o, app_path(o, "/restart"), "{}", "restarting", out), out, err);
}

int cancel_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  Reply r = call(o, "POST", app_path(o, "/cancel"), "{}", 10);
  if (!answered_ok(o, r, "cancel", err)) return 1;
  if (o.json)
    out << log::json_text(r.body, 2) << "\n";
  else
    out << fmt::format("cancelled the {} at stage {}\n", str(r.body, "cancelled"), str(r.body, "stage"));
  return 0;
}

int stop_command(const ClientOptions& o, int wait_s, std::ostream& out, std::ostream& err) {
  Reply r = call(o, "POST", "/shutdown", "{}", 10);
  if (!answered_ok(o, r, "stop", err)) return 1;
  const int pid = r.body.value("pid", 0);
  if (!o.json) out << fmt::format("stopping the daemon (pid {}): draining the apps\n", pid) << std::flush;
  // Gone when its API no longer answers: it closes the API first, then drains.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (o.remote || pid <= 0) {  // another machine's pid means nothing here: its API has gone
      if (!call(o, "GET", "/", "", 2).failure.empty()) break;
    } else if (!process::is_alive(pid)) {  // its parent may not have reaped it yet
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (std::chrono::steady_clock::now() >= deadline) {
    err << fmt::format("slot-machine: stop: the daemon (pid {}) is still draining after {} s\n", pid, wait_s);
    return 1;
  }
  if (o.json)
    out << log::json_text(r.body, 2) << "\n";
  else
    out << "stopped\n";
  return 0;
}

int upgrade_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  Reply r = call(o, "POST", "/upgrade", "{}", 120);  // the new daemon gets 60 s to be ready
  if (!answered_ok(o, r, "upgrade", err)) return 1;
  if (o.json)
    out << log::json_text(r.body, 2) << "\n";
  else
    out << fmt::format("upgraded: the daemon is now pid {} ({})\n", r.body.value("pid", 0),
                       str(r.body, "version"));
  return 0;
}

static std::string human_duration(long long s) {
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{}h", s / 86400, s % 86400 / 3600);
}

int status_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  Reply r = call(o, "GET", app_path(o, "/status"), "", 10);
  if (!answered_ok(o, r, "status", err)) return 1;
  const json& s = r.body;
  if (o.json) {
    out << log::json_text(s, 2) << "\n";
    return 0;
  }
  if (str(s, "live_slot").empty()) {
    out << "live:        nothing deployed yet\n";
  } else {
    out << fmt::format("live:        slot {}  {}  {}", str(s, "live_slot"), str(s, "live_commit"),
                       s.value("healthy", false) ? "healthy" : "NOT HEALTHY");
    if (s.value("live_pid", 0)) out << fmt::format("  (pid {}, port {})", s.value("live_pid", 0),
                                                   s.value("live_port", 0));
    out << "\n";
  }
  if (s.contains("canary") && s["canary"].is_object()) {
    const json& c = s["canary"];
    out << fmt::format("canary:      slot {}  {}  {}% of new visitors since {} (pid {}): {} request(s) to it, {} to "
                       "live; `slot-machine promote` makes it live, `slot-machine rollback` ends it\n",
                       str(c, "slot"), str(c, "commit"), c.value("percent", 0), str(c, "since"), c.value("pid", 0),
                       c.value("requests_new", 0ULL), c.value("requests_old", 0ULL));
  }
  if (str(s, "previous_slot").empty() && s.contains("canary") && s["canary"].is_object())
    out << "previous:    none: the canary holds the other slot (`slot-machine rollback` ends the canary)";
  else if (str(s, "previous_slot").empty())
    out << (str(s, "live_slot").empty() ? "previous:    none"
            : str(s, "previous_replaced").empty()
                ? "previous:    none: nothing to roll back to"
                : fmt::format("previous:    none: nothing to roll back to (the last deploy used the slot of {})",
                              short_hash(str(s, "previous_replaced"))));
  else
    out << fmt::format("previous:    slot {}  {}{}", str(s, "previous_slot"), str(s, "previous_commit"),
                       str(s, "previous_commit") == str(s, "live_commit") ? "  (the live commit: a rollback "
                                                                            "changes no code)" : "");
  if (!str(s, "standby").empty())
    out << fmt::format("  {} standby (pid {}) until {}", str(s, "standby"), s.value("previous_pid", 0),
                       str(s, "standby_until"));
  out << "\n";
  out << fmt::format("last deploy: {}\n", str(s, "last_deploy_time").empty()
                                              ? "never" : str(s, "last_deploy_time"));
  out << fmt::format("mode:        {}", str(s, "mode"));
  if (s.value("live_port", 0) && str(s, "mode") == "proxy")
    out << fmt::format(" (app on port {}, internal {})", s.value("live_port", 0),
                       s.value("live_internal_port", 0));
  out << "\n";
  if (!str(s, "live_since").empty())
    out << fmt::format("live since:  {} (up {})\n", str(s, "live_since"),
                       human_duration(s.value("live_uptime_s", 0LL)));
  out << fmt::format("daemon up:   {}\n", human_duration(s.value("daemon_uptime_s", 0LL)));
  if (s.value("crash_restarts", 0) > 0)
    out << fmt::format("restarted:   {} time(s) after the app crashed (restart: on-failure)\n",
                       s.value("crash_restarts", 0));
  if (!str(s, "paused_since").empty())
    out << fmt::format("paused:      since {}: {} request(s) held; `slot-machine resume` lets them on\n",
                       str(s, "paused_since"), s.value("held_requests", 0));
  if (s.contains("maintenance") && s["maintenance"].is_object())
    out << fmt::format("maintenance: ON since {}: every request gets 503 (Retry-After: {}); "
                       "`slot-machine maintenance off` ends it\n",
                       str(s["maintenance"], "since"), s["maintenance"].value("retry_after_s", 0));
  if (s.contains("workers") && s["workers"].is_array())
    for (const auto& w : s["workers"]) {
      const int pid = w.value("pid", 0);
      out << fmt::format("worker:      {:<12} {}{}\n", str(w, "name"),
                         pid ? fmt::format("pid {}, since {}", pid, str(w, "since"))
                             : fmt::format("NOT RUNNING ({}; starting again)", str(w, "last_exit")),
                         w.value("restarts", 0) ? fmt::format(", restarted {} time(s)", w.value("restarts", 0)) : "");
    }
  if (s.contains("last_auto_rollback") && s["last_auto_rollback"].is_object())
    out << fmt::format("auto-rollback: {}: {}\n", str(s["last_auto_rollback"], "time"),
                       str(s["last_auto_rollback"], "reason"));
  if (!str(s, "operation").empty())
    out << fmt::format("running:     {}{} ({})\n", str(s, "operation"),
                       str(s, "operation_commit").empty() ? "" : " of " + str(s, "operation_commit"),
                       str(s, "stage"));
  return 0;
}

int history_command(const ClientOptions& o, int limit, std::ostream& out, std::ostream& err) {
  Reply r = call(o, "GET", app_path(o, fmt::format("/history?limit={}", limit)), "", 10);
  if (!answered_ok(o, r, "history", err)) return 1;
  const json entries = r.body.value("entries", json::array());
  if (o.json) {
    out << log::json_text(entries, 2) << "\n";
    return 0;
  }
  if (entries.empty()) {
    out << "no deploys yet\n";
    return 0;
  }
  out << fmt::format("{:<20}  {:<14}  {:<6}  {:<12}  {:<4}  {:>8}  {}\n", "TIME", "ACTION", "RESULT",
                     "COMMIT", "SLOT", "TOOK", "ERROR / DETAIL");
  for (const auto& e : entries) {
    std::string error = str(e, "error");
    if (auto nl = error.find('\n'); nl != std::string::npos) error = error.substr(0, nl) + " ...";
    if (error.empty() && (str(e, "action") == "auto-rollback" || str(e, "action") == "canary-abort"))
      error = str(e, "reason");
    // Workers, cron jobs and one-off commands (contract §16): which, and how it ended.
    if (str(e, "action") == "worker-restart") error = fmt::format("{}: {}", str(e, "worker"), str(e, "detail"));
    if (str(e, "action") == "cron")
      error = fmt::format("{}: exit {}", str(e, "job"), e.value("exit_code", -1));
    if (str(e, "action") == "run") {
      std::string cmd = str(e, "command");
      if (cmd.size() > 60) cmd = cmd.substr(0, 57) + "...";
      error = fmt::format("exit {}: {}", e.value("exit_code", -1), cmd);
    }
    out << fmt::format("{:<20}  {:<14}  {:<6}  {:<12}  {:<4}  {:>6}ms  {}\n", str(e, "time"),
                       str(e, "action"), str(e, "result"), str(e, "commit").substr(0, 12),
                       str(e, "slot"), e.value("duration_ms", 0LL), error);
  }
  return 0;
}

int logs_command(const ClientOptions& o, const std::string& slot, const std::string& worker,
                 const std::string& cron, int lines, bool follow, std::ostream& out, std::ostream& err) {
  const std::string which = !worker.empty() ? "worker=" + worker  // names: [a-z0-9-]
                            : !cron.empty() ? "cron=" + cron
                                            : "slot=" + slot;
  // A follower may wait for lines for ever.
  Reply r = call_following(o, app_path(o, fmt::format("/logs?{}&tail={}&follow={}", which, lines, follow ? 1 : 0)),
                           follow ? 365 * 86400 : 30, [&](const char* data, size_t len) {
                             out.write(data, static_cast<std::streamsize>(len));
                             out.flush();
                             return static_cast<bool>(out);
                           });
  if (r.status == 200) return 0;  // also when the daemon stopped while following
  return answered_ok(o, r, "logs", err) ? 0 : 1;
}

int deploy_to_each(const ClientOptions& o, const std::vector<std::string>& remotes,
                   const std::optional<std::string>& commit, std::ostream& out, std::ostream& err) {
  std::optional<std::string> rev = commit;
  if (!rev) {
    rev = head_commit(err);
    if (!rev) return 1;
  }
  for (size_t i = 0; i < remotes.size(); ++i) {
    ClientOptions one = o;
    one.url = remotes[i];
    one.remote = true;
    if (!o.json) out << fmt::format("==> {} ({} of {})\n", one.url, i + 1, remotes.size()) << std::flush;
    if (deploy_command(one, rev, out, err) != 0) {
      err << fmt::format("slot-machine: deploy stopped at {}: it failed there", one.url);
      if (i > 0) {
        err << "; " << *rev << " is live on";
        for (size_t j = 0; j < i; ++j) err << " " << remotes[j];
      }
      if (i + 1 < remotes.size()) {
        err << "; not deployed to";
        for (size_t j = i + 1; j < remotes.size(); ++j) err << " " << remotes[j];
      }
      err << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace sm::cli
