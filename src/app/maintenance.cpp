// Maintenance (contract §14): an app's requests answered 503 with a page instead of by
// the app, kept in <data>/maintenance.json so that it outlives a restart or an upgrade.

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "app/app.h"
#include "files/atomic_file.h"
#include "log/json_text.h"
#include "log/log.h"

namespace sm::app {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kBuiltInPage =
    "<!doctype html>\n<html lang=\"en\">\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Down for maintenance</title>\n"
    "<style>body{font:17px/1.5 system-ui,sans-serif;max-width:34em;margin:5em auto;padding:0 1em;color:#222}"
    "h1{font-size:1.6em}</style>\n"
    "<h1>Down for maintenance</h1>\n<p>This site is being worked on. Please try again in a few minutes.</p>\n"
    "</html>\n";

MaintenancePage page_of(const Maintenance& m) {
  return {m.page.empty() ? kBuiltInPage : m.page,
          fmt::format("down for maintenance; try again in {} s\n", m.retry_after_s), m.retry_after_s};
}

}  // namespace

std::string App::set_maintenance(std::optional<Maintenance> m, int& status) {
  if (m && m->page.size() > kMaxMaintenancePage) {
    status = 400;
    return fmt::format("the page is {} bytes; at most {} (1 MiB)", m->page.size(), kMaxMaintenancePage);
  }
  if (m && (m->retry_after_s < 1 || m->retry_after_s > 86400)) {
    status = 400;
    return fmt::format("retry_after_s must be 1-86400, got {}", m->retry_after_s);
  }
  std::lock_guard one(maintenance_mu_);
  if (m) m->since = log::now_rfc3339();
  if (!router_.set_maintenance(m ? std::optional(page_of(*m)) : std::nullopt)) {
    status = 400;
    return "maintenance needs proxy mode: without the proxy (--no-proxy) the app itself answers every request";
  }
  const fs::path file = paths_.data_dir / "maintenance.json";
  try {
    if (m)
      files::write_atomic(file, log::json_text(json{{"page", m->page}, {"retry_after_s", m->retry_after_s},
                                                     {"since", m->since}}) + "\n");
    else
      fs::remove(file);
  } catch (const std::exception& e) {
    log::info("warning: maintenance not saved (a restart will not remember it): {}", e.what());
  }
  {
    std::lock_guard lock(mu_);
    maintenance_ = m;
  }
  log::info("maintenance {}", m ? fmt::format("on (Retry-After {} s, {} page)", m->retry_after_s,
                                              m->page.empty() ? "built-in" : "own")
                                : "off");
  status = 200;
  return "";
}

void App::restore_maintenance() {
  const fs::path file = paths_.data_dir / "maintenance.json";
  std::ifstream in(file);
  if (!in) return;
  std::stringstream text;
  text << in.rdbuf();
  const json j = json::parse(text.str(), nullptr, false);
  Maintenance m;
  if (!j.is_object() || !j.contains("page") || !j["page"].is_string() || !j.contains("retry_after_s") ||
      !j["retry_after_s"].is_number_integer()) {
    log::info("warning: {} is unreadable; the app is not in maintenance", file.string());
    return;
  }
  m.page = j["page"].get<std::string>();
  m.retry_after_s = j["retry_after_s"].get<int>();
  const std::string since = j.value("since", "");
  int status = 0;
  if (auto err = set_maintenance(m, status); !err.empty()) {
    log::info("warning: the app was in maintenance, but {}", err);
    return;
  }
  std::lock_guard lock(mu_);
  if (maintenance_ && !since.empty()) maintenance_->since = since;  // since it was switched on, not restarted
}

std::string App::pause(int timeout_s, int& status) {
  if (timeout_s < 1 || timeout_s > 600) {
    status = 400;
    return fmt::format("timeout_s must be 1-600, got {}", timeout_s);
  }
  const auto done = router_.pause(timeout_s);
  status = !done ? 400 : *done ? 200 : 409;
  if (!done) return "pause needs proxy mode: without the proxy (--no-proxy) requests go straight to the app";
  if (!*done) return "already paused; `slot-machine resume` ends it";
  log::info("paused: new requests wait for resume, for {} s at most", timeout_s);
  return "";
}

std::string App::resume(int& status) {
  const auto held = router_.pause_state();
  const auto done = router_.resume();
  status = !done ? 400 : *done ? 200 : 409;
  if (!done) return "pause needs proxy mode: without the proxy (--no-proxy) requests go straight to the app";
  if (!*done) return "not paused";
  log::info("resumed: {} held request(s) go on", held ? held->held : 0);
  return "";
}

}  // namespace sm::app
