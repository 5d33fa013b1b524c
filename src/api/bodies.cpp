#include "api/bodies.h"
#include "version/version.h"

#include <fmt/format.h>

#include "log/json_text.h"
#include <unistd.h>

namespace sm::api {
using nlohmann::json;
using app::OpResult;
using app::OpStatus;

int http_status(OpStatus s) {
  switch (s) {
    case OpStatus::Ok: return 200;
    case OpStatus::Busy: return 409;
    case OpStatus::Invalid: return 400;
    case OpStatus::UnknownCommit: return 404;
    case OpStatus::NoPrevious: return 400;
    case OpStatus::Failed: return 500;
    case OpStatus::ShuttingDown: return 503;
    case OpStatus::Conflict: return 409;
  }
  return 500;
}

json op_body(const OpResult& r, bool with_previous) {
  json j{{"success", r.status == OpStatus::Ok}, {"slot", r.slot}, {"commit", r.commit}};
  if (with_previous || r.canary_ended) j["previous_commit"] = r.previous_commit;
  if (r.unchanged) j["unchanged"] = true;
  if (!r.previous_replaced.empty()) j["previous_replaced"] = r.previous_replaced;
  if (r.canary_percent) j["canary_percent"] = r.canary_percent;
  if (r.canary_ended) j["canary_ended"] = true;
  if (r.status != OpStatus::Ok) {
    j["error"] = r.error;
    if (!r.stage.empty()) j["stage"] = r.stage;
  }
  return j;
}

json status_body(const app::Status& s) {
  json workers = json::array();
  for (const auto& w : s.workers)
    workers.push_back({{"name", w.name}, {"pid", w.pid}, {"since", w.since}, {"restarts", w.restarts},
                       {"last_exit", w.last_exit}});
  return json{{"live_slot", s.live_slot},
              {"live_commit", s.live_commit},
              {"previous_slot", s.previous_slot},
              {"previous_commit", s.previous_commit},
              {"can_roll_back", !s.previous_slot.empty()},
              {"previous_replaced", s.previous_replaced},
              {"last_deploy_time", s.last_deploy_time},
              {"healthy", s.healthy},
              {"mode", s.mode},
              {"operation", s.operation},
              {"stage", s.stage},
              {"operation_commit", s.operation_commit},
              {"operation_stages", s.operation_stages},
              {"live_pid", s.live_pid},
              {"live_port", s.live_ports.port},
              {"live_internal_port", s.live_ports.internal_port},
              {"live_since", s.live_since},
              {"live_uptime_s", s.live_uptime_s},
              {"daemon_uptime_s", s.daemon_uptime_s},
              {"crash_restarts", s.crash_restarts},
              {"standby", s.standby},
              {"standby_until", s.standby_until},
              {"previous_pid", s.previous_pid},
              {"last_auto_rollback", s.last_auto_rollback_time.empty()
                                         ? json(nullptr)
                                         : json{{"time", s.last_auto_rollback_time},
                                                {"reason", s.last_auto_rollback_reason}}},
              {"workers", std::move(workers)},
              {"paused_since", s.paused ? json(s.paused->since) : json(nullptr)},
              {"held_requests", s.paused ? s.paused->held : 0},
              {"maintenance", s.maintenance ? json{{"since", s.maintenance->since},
                                                   {"retry_after_s", s.maintenance->retry_after_s}}
                                            : json(nullptr)},
              {"canary", s.canary ? json{{"commit", s.canary->commit},
                                         {"slot", s.canary->slot},
                                         {"percent", s.canary->percent},
                                         {"since", s.canary->since},
                                         {"pid", s.canary->pid},
                                         {"port", s.canary->ports.port},
                                         {"internal_port", s.canary->ports.internal_port},
                                         {"requests_new", s.canary->requests_new},
                                         {"requests_old", s.canary->requests_old}}
                                  : json(nullptr)},
              {"daemon_pid", getpid()},
              {"daemon_version", kVersion}};
}

std::pair<DeployBody, std::string> parse_deploy_body(const std::string& body) {
  const char* shape = "expected a JSON body like {\"commit\": \"<rev>\"}";
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception&) {  // parse_error, or out_of_range (1e999)
    return {{}, body.empty() ? fmt::format("missing request body; {}", shape)
                             : fmt::format("request body is not valid JSON; {}", shape)};
  }
  if (!j.is_object()) return {{}, fmt::format("request body must be a JSON object; {}", shape)};
  if (!j.contains("commit")) return {{}, fmt::format("missing \"commit\"; {}", shape)};
  if (!j["commit"].is_string())
    return {{}, fmt::format("\"commit\" must be a string, got {}", j["commit"].type_name())};
  DeployBody d{j["commit"].get<std::string>(), {}, false};
  if (j.contains("force")) {
    if (!j["force"].is_boolean()) return {{}, fmt::format("\"force\" must be true or false, got {}", j["force"].type_name())};
    d.force = j["force"].get<bool>();
  }
  if (j.contains("canary_percent")) {
    const json& p = j["canary_percent"];
    if (!p.is_number_integer() || p.get<long long>() < 1 || p.get<long long>() > 99)
      return {{}, fmt::format("\"canary_percent\" must be a whole number from 1 to 99 (the share of new visitors "
                              "the new version gets), got {}", p.dump())};
    d.canary_percent = p.get<int>();
  }
  if (j.contains("quarantine")) {
    if (!j["quarantine"].is_string() || j["quarantine"].get<std::string>().empty())
      return {{}, "\"quarantine\" must be the path of a push's quarantine directory"};
    d.quarantine = j["quarantine"].get<std::string>();
  }
  return {d, ""};
}

std::pair<RunBody, std::string> parse_run_body(const std::string& body) {
  const char* shape = "expected a JSON body like {\"command\": [\"rails\", \"console\"]}";
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception&) {
    return {{}, body.empty() ? fmt::format("missing request body; {}", shape)
                             : fmt::format("request body is not valid JSON; {}", shape)};
  }
  if (!j.is_object()) return {{}, fmt::format("request body must be a JSON object; {}", shape)};
  for (const auto& [key, _] : j.items())
    if (key != "command" && key != "slot" && key != "attach")
      return {{}, fmt::format("unknown field \"{}\" (run takes command, slot, attach)", key)};
  if (!j.contains("command") || !j["command"].is_array() || j["command"].empty())
    return {{}, fmt::format("\"command\" must be a non-empty array of strings; {}", shape)};
  RunBody r;
  size_t total = 0;
  for (const auto& a : j["command"]) {
    if (!a.is_string()) return {{}, fmt::format("\"command\" entries must be strings, got {}", a.type_name())};
    const std::string s = a.get<std::string>();
    if (s.find('\0') != std::string::npos) return {{}, "\"command\" entries must not contain a NUL byte"};
    total += s.size();
    r.command.push_back(s);
  }
  if (r.command.front().empty()) return {{}, "\"command\" must start with the program to run, got \"\""};
  if (r.command.size() > 4096 || total > (1 << 20))
    return {{}, "\"command\" is too long (at most 4096 words, 1 MiB)"};
  if (j.contains("slot")) {
    if (!j["slot"].is_string() || (j["slot"] != "live" && j["slot"] != "previous"))
      return {{}, fmt::format("\"slot\" must be \"live\" or \"previous\", got {}", log::json_text(j["slot"]))};
    r.slot = j["slot"].get<std::string>();
  }
  if (j.contains("attach")) {
    if (!j["attach"].is_boolean()) return {{}, "\"attach\" must be true or false"};
    r.attach = j["attach"].get<bool>();
  }
  return {r, ""};
}

std::pair<std::optional<app::Maintenance>, std::string> parse_maintenance_body(const std::string& body) {
  const char* shape = "expected a JSON body like {\"enabled\": true, \"retry_after_s\": 60}";
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception&) {  // also a page that is not UTF-8
    return {std::nullopt, body.empty() ? fmt::format("missing request body; {}", shape)
                                       : fmt::format("request body is not valid JSON (in UTF-8); {}", shape)};
  }
  if (!j.is_object()) return {std::nullopt, fmt::format("request body must be a JSON object; {}", shape)};
  for (const auto& [key, _] : j.items())
    if (key != "enabled" && key != "page" && key != "retry_after_s")
      return {std::nullopt, fmt::format("unknown field \"{}\" (maintenance takes enabled, page, retry_after_s)", key)};
  if (!j.contains("enabled") || !j["enabled"].is_boolean())
    return {std::nullopt, fmt::format("\"enabled\" must be true or false; {}", shape)};
  if (!j["enabled"].get<bool>()) return {std::nullopt, ""};
  app::Maintenance m;
  if (j.contains("page")) {
    if (!j["page"].is_string()) return {std::nullopt, "\"page\" must be the page's text (HTML)"};
    m.page = j["page"].get<std::string>();
    if (m.page.size() > app::kMaxMaintenancePage)
      return {std::nullopt, fmt::format("\"page\" is {} bytes; at most {} (1 MiB)", m.page.size(), app::kMaxMaintenancePage)};
  }
  if (j.contains("retry_after_s")) {
    if (!j["retry_after_s"].is_number_integer() || j["retry_after_s"].get<long long>() < 1 ||
        j["retry_after_s"].get<long long>() > 86400)
      return {std::nullopt, fmt::format("\"retry_after_s\" must be 1-86400, got {}", log::json_text(j["retry_after_s"]))};
    m.retry_after_s = j["retry_after_s"].get<int>();
  }
  return {m, ""};
}

}  // namespace sm::api
