#include "api/client.h"

#include <fmt/format.h>
#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "git/git.h"
#include "log/json_text.h"

namespace sm::api {
using nlohmann::json;

namespace {

/// An HTTP exchange with the daemon: a status and a parsed JSON body, or the reason
/// it could not happen.
struct Reply {
  int status = 0;
  json body;
  std::string failure;  // non-empty when the daemon could not be reached
  long long took_ms = -1;  // a streamed operation's duration
};

std::string base_url(const ClientOptions& o) { return fmt::format("http://{}:{}", o.host, o.port); }

Reply call(const ClientOptions& o, const std::string& method, const std::string& path,
           const std::string& body, time_t read_timeout_s) {
  httplib::Client c(o.host, o.port);
  c.set_connection_timeout(2, 0);
  c.set_read_timeout(read_timeout_s, 0);
  httplib::Headers headers;
  if (o.wait_s > 0) headers.emplace("Prefer", fmt::format("wait={}", o.wait_s));
  httplib::Result res = method == "GET" ? c.Get(path)
                                        : c.Post(path, headers, body, "application/json");
  Reply r;
  if (!res) {
    r.failure = res.error() == httplib::Error::Connection ? "connection refused"
                                                          : httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  try {
    r.body = json::parse(res->body);
  } catch (const json::exception&) {
    r.body = json{{"error", fmt::format("daemon answered HTTP {} with a non-JSON body", res->status)}};
  }
  return r;
}

std::string unreachable(const ClientOptions& o, const std::string& why) {
  return fmt::format("slot-machine: cannot reach the daemon at {} ({}); is `slot-machine start` "
                     "running? (the API port comes from ./slot-machine.json or --api-port)\n",
                     base_url(o), why);
}

/// Checks the daemon answers before anything else is done; prints why when not.
bool reachable(const ClientOptions& o, std::ostream& err) {
  Reply r = call(o, "GET", "/", "", 5);
  if (!r.failure.empty() || r.status != 200) {
    err << unreachable(o, r.failure.empty() ? fmt::format("HTTP {}", r.status) : r.failure);
    return false;
  }
  return true;
}

std::string str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

std::string short_hash(const std::string& h) { return h.empty() ? "(none)" : h.substr(0, 12); }

/// True when `r` is a 200; otherwise prints why (unreachable, or the daemon's error for
/// `what`) and returns false.
bool answered_ok(const ClientOptions& o, const Reply& r, const char* what, std::ostream& err) {
  if (!r.failure.empty()) {
    err << unreachable(o, r.failure);
    return false;
  }
  if (r.status != 200) {
    err << fmt::format("slot-machine: {} failed (HTTP {}): {}\n", what, r.status, str(r.body, "error"));
    return false;
  }
  return true;
}

/// Prints an operation's outcome. `op` names it in errors ("deploy"), `done` in the
/// success line ("deployed").
int finish_op(const ClientOptions& o, const char* op, const char* done, const Reply& r,
              std::ostream& out, std::ostream& err) {
  if (!r.failure.empty()) {
    err << unreachable(o, r.failure);
    return 1;
  }
  if (o.json) out << log::json_text(r.body, 2) << "\n";
  if (r.status == 200 && r.body.value("success", false)) {
    if (!o.json) {
      out << fmt::format("{}{} {} in slot {}", o.tty ? "\033[1;32m" : "", done, str(r.body, "commit"),
                         str(r.body, "slot"));
      if (r.body.contains("previous_commit"))
        out << fmt::format(" (previous: {})", short_hash(str(r.body, "previous_commit")));
      if (r.took_ms >= 0) out << fmt::format(" in {} ms", r.took_ms);
      out << (o.tty ? "\033[0m\n" : "\n");
    }
    return 0;
  }
  std::string error = str(r.body, "error");
  err << fmt::format("slot-machine: {} failed (HTTP {}): {}\n", op, r.status,
                     error.empty() ? log::json_text(r.body) : error);
  return 1;
}

/// POSTs an operation asking for NDJSON progress and prints each stage as it ends
/// (with its duration), setup output indented under it, slow health checks; returns
/// the final answer as if the call had been plain.
Reply call_streaming(const ClientOptions& o, const std::string& path, const std::string& body,
                     const char* what, std::ostream& out) {
  httplib::Client c(o.host, o.port);
  c.set_connection_timeout(2, 0);
  c.set_read_timeout(86400, 0);
  Reply r;
  std::string buffer, stage;
  long long stage_at = 0;
  json done;
  auto finish_stage = [&](long long now) {
    if (!stage.empty() && !o.quiet) out << fmt::format("  {:<10} {:>6} ms\n", stage, now - stage_at);
  };
  auto on_line = [&](const std::string& line) {
    json e = json::parse(line, nullptr, false);
    if (!e.is_object()) return;
    const std::string event = str(e, "event");
    const long long at = e.value("at_ms", 0LL);
    if (event.empty()) {  // the final object
      r.body = e;
      return;
    }
    if (event == "stage") {
      finish_stage(at);
      stage = str(e, "stage");
      stage_at = at;
    } else if (event == "output" && !o.quiet) {
      out << "    | " << str(e, "line") << "\n";
    } else if (event == "health" && !o.quiet && !e.value("healthy", false) && at - stage_at >= 500) {
      out << fmt::format("    health check {}: {}\n", e.value("attempt", 0), str(e, "detail"));
    } else if (event == "done") {
      done = e;
      finish_stage(e.value("duration_ms", 0LL));
      stage.clear();
    }
    out.flush();
  };
  if (!o.quiet) out << fmt::format("{}\n", what) << std::flush;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = {{"Accept", "application/x-ndjson"}, {"Content-Type", "application/json"}};
  if (o.wait_s > 0) req.headers.emplace("Prefer", fmt::format("wait={}", o.wait_s));
  req.body = body;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    buffer.append(data, len);
    for (size_t nl; (nl = buffer.find('\n')) != std::string::npos; buffer.erase(0, nl + 1))
      on_line(buffer.substr(0, nl));
    return true;
  };
  auto res = c.send(req);
  if (!res) {
    r.failure = res.error() == httplib::Error::Connection ? "connection refused"
                                                          : httplib::to_string(res.error());
    return r;
  }
  if (res->status != 200 || r.body.is_null()) {  // refused before streaming (a 400)
    r.status = res->status;
    if (r.body.is_null()) r.body = json::parse(buffer, nullptr, false);
    if (!r.body.is_object())
      r.body = json::object({{"error", fmt::format("daemon answered HTTP {}", res->status)}});
    return r;
  }
  r.status = done.value("status", r.body.value("success", false) ? 200 : 500);
  r.took_ms = done.value("duration_ms", -1LL);
  return r;
}

}  // namespace

int deploy_command(const ClientOptions& o, const std::optional<std::string>& commit,
                   std::ostream& out, std::ostream& err) {
  if (!reachable(o, err)) return 1;
  std::string rev;
  if (commit) {
    rev = *commit;
  } else {
    try {
      git::Library lib;
      rev = git::Repository::discover(std::filesystem::current_path()).resolve("HEAD");
    } catch (const git::GitError& e) {
      err << fmt::format("slot-machine: cannot find the commit to deploy: {}; run deploy inside "
                         "the app's repository or name a COMMIT\n",
                         e.what());
      return 1;
    }
  }
  // Deploys include the setup command, which may take long: wait up to a day.
  const std::string body = log::json_text(json{{"commit", rev}});
  if (o.json) return finish_op(o, "deploy", "deployed", call(o, "POST", "/deploy", body, 86400), out, err);
  return finish_op(o, "deploy", "deployed",
                   call_streaming(o, "/deploy", body, fmt::format("deploying {}", rev).c_str(), out),
                   out, err);
}

int rollback_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  if (!reachable(o, err)) return 1;
  if (o.json) return finish_op(o, "rollback", "rolled back to", call(o, "POST", "/rollback", "{}", 86400), out, err);
  return finish_op(o, "rollback", "rolled back to",
                   call_streaming(o, "/rollback", "{}", "rolling back", out), out, err);
}

int restart_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  if (!reachable(o, err)) return 1;
  if (o.json) return finish_op(o, "restart", "restarted", call(o, "POST", "/restart", "{}", 86400), out, err);
  return finish_op(o, "restart", "restarted",
                   call_streaming(o, "/restart", "{}", "restarting", out), out, err);
}

int cancel_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  Reply r = call(o, "POST", "/cancel", "{}", 10);
  if (!answered_ok(o, r, "cancel", err)) return 1;
  if (o.json)
    out << log::json_text(r.body, 2) << "\n";
  else
    out << fmt::format("cancelled the {} at stage {}\n", str(r.body, "cancelled"), str(r.body, "stage"));
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
  Reply r = call(o, "GET", "/status", "", 10);
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
  out << fmt::format("previous:    {}\n", str(s, "previous_slot").empty()
                                              ? "none"
                                              : fmt::format("slot {}  {}", str(s, "previous_slot"),
                                                            str(s, "previous_commit")));
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
  if (!str(s, "operation").empty())
    out << fmt::format("running:     {} ({})\n", str(s, "operation"), str(s, "stage"));
  return 0;
}

int history_command(const ClientOptions& o, int limit, std::ostream& out, std::ostream& err) {
  Reply r = call(o, "GET", fmt::format("/history?limit={}", limit), "", 10);
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
  out << fmt::format("{:<20}  {:<8}  {:<6}  {:<12}  {:<4}  {:>8}  {}\n", "TIME", "ACTION", "RESULT",
                     "COMMIT", "SLOT", "TOOK", "ERROR");
  for (const auto& e : entries) {
    std::string error = str(e, "error");
    if (auto nl = error.find('\n'); nl != std::string::npos) error = error.substr(0, nl) + " ...";
    out << fmt::format("{:<20}  {:<8}  {:<6}  {:<12}  {:<4}  {:>6}ms  {}\n", str(e, "time"),
                       str(e, "action"), str(e, "result"), str(e, "commit").substr(0, 12),
                       str(e, "slot"), e.value("duration_ms", 0LL), error);
  }
  return 0;
}

int logs_command(const ClientOptions& o, const std::string& slot, int lines, bool follow,
                 std::ostream& out, std::ostream& err) {
  httplib::Client c(o.host, o.port);
  c.set_connection_timeout(2, 0);
  c.set_read_timeout(follow ? 365 * 86400 : 30, 0);  // a follower may wait for lines forever
  std::string error_body;
  int status = 0;
  auto res = c.Get(
      fmt::format("/logs?slot={}&tail={}&follow={}", slot, lines, follow ? 1 : 0),
      [&](const httplib::Response& r) {
        status = r.status;
        return true;
      },
      [&](const char* data, size_t len) {
        if (status == 200) {
          out.write(data, static_cast<std::streamsize>(len));
          out.flush();
        } else {
          error_body.append(data, len);
        }
        return static_cast<bool>(out);
      });
  if (!res) {
    if (status == 200) return 0;  // the daemon stopped while following
    err << unreachable(o, res.error() == httplib::Error::Connection ? "connection refused"
                                                                    : httplib::to_string(res.error()));
    return 1;
  }
  if (status != 200) {
    json j = json::parse(error_body, nullptr, false);
    err << fmt::format("slot-machine: logs failed (HTTP {}): {}\n", status,
                       j.is_object() ? str(j, "error") : error_body);
    return 1;
  }
  return 0;
}

}  // namespace sm::api
