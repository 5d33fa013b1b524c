#pragma once
// The API's JSON bodies: operation answers, /status, and what POST /deploy takes
// (split from server.cpp, which routes).

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "app/app.h"

namespace sm::api {

/// The HTTP status an operation's outcome maps to.
int http_status(app::OpStatus s);

/// An operation's answer: success, slot, commit (previous_commit), error and stage.
nlohmann::json op_body(const app::OpResult& r, bool with_previous);

/// GET /status.
nlohmann::json status_body(const app::Status& s);

/// POST /deploy: {"commit": "<rev>", "quarantine": "<dir>" (optional: a push's
/// objects, for the pre-receive hook), "force": bool (optional)}.
struct DeployBody {
  std::string commit;
  std::filesystem::path quarantine;
  bool force = false;  // "force": true redeploys the commit even when it is live and healthy
  int canary_percent = 0;  // "canary_percent": 1-99 starts a canary (contract §14); 0: a plain deploy
};
/// The body, or an error message for a 400.
std::pair<DeployBody, std::string> parse_deploy_body(const std::string& body);

/// POST /run (contract §16): {"command": ["ARG", ...], "slot": "live"|"previous",
/// "attach": bool}.
struct RunBody {
  std::vector<std::string> command;
  std::string slot = "live";
  bool attach = false;  // the CLI runs it on its own terminal: answer where and how
};
std::pair<RunBody, std::string> parse_run_body(const std::string& body);

/// POST /maintenance (contract §14): {"enabled": bool, "page"?: text, "retry_after_s"?: N};
/// nothing when enabled is false.
std::pair<std::optional<app::Maintenance>, std::string> parse_maintenance_body(const std::string& body);

}  // namespace sm::api
