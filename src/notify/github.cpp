#include "notify/github.h"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>

#include "log/json_text.h"
#include "log/log.h"
#include "version/version.h"

namespace sm::notify {
using nlohmann::json;

GitHubDeployments::GitHubDeployments(config::Config::GitHub cfg, std::string token)
    : cfg_(std::move(cfg)), token_(std::move(token)) {
  jobs_.start([this](Job& job) { post(job); });
}

void GitHubDeployments::on(const app::Event& e) {
  Job job{e.op, e.fields.value("commit", ""), "", ""};
  if (e.kind == app::EventKind::Started && e.fields.value("operation", "") == "deploy") {
    job.description = fmt::format("slot-machine: deploying to slot {}", e.fields.value("slot", ""));
  } else if (e.kind == app::EventKind::Finished && e.fields.value("action", "") == "deploy") {
    const bool ok = e.fields.value("result", "") == "ok";
    job.state = ok ? "success" : "failure";
    job.description = ok ? fmt::format("slot-machine: live in slot {}", e.fields.value("slot", ""))
                         : fmt::format("slot-machine: failed at {}: {}", e.fields.value("stage", ""),
                                       e.fields.value("error", ""));
  } else {
    return;
  }
  if (job.description.size() > 140) job.description = job.description.substr(0, 137) + "...";  // GitHub's limit
  jobs_.put(std::move(job));  // dropped once stopping
}

void GitHubDeployments::stop() {
  if (const size_t dropped = jobs_.close())
    log::info("github: {} deployment update(s) not posted: the daemon is stopping", dropped);
}

std::optional<json> GitHubDeployments::call(const std::string& path, const json& body) {
  const auto scheme_end = cfg_.api_url.find("://");
  const auto path_at = cfg_.api_url.find('/', scheme_end + 3);
  const std::string origin = cfg_.api_url.substr(0, path_at);
  const std::string prefix = path_at == std::string::npos ? "" : cfg_.api_url.substr(path_at);
  std::string why;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    if (attempt > 1 && !jobs_.sleep_for(std::chrono::seconds(attempt - 1))) return std::nullopt;  // stopping
    httplib::Client c(origin);
    c.set_connection_timeout(5, 0);
    c.set_read_timeout(10, 0);
    c.enable_server_certificate_verification(true);
    const httplib::Headers h{{"Authorization", "Bearer " + token_},
                             {"Accept", "application/vnd.github+json"},
                             {"X-GitHub-Api-Version", "2022-11-28"},
                             {"User-Agent", std::string("slot-machine/") + kVersion}};
    auto r = c.Post(prefix + path, h, log::json_text(body), "application/json");
    if (!r) {
      why = fmt::format("no answer: {}", httplib::to_string(r.error()));
      continue;
    }
    if (r->status >= 200 && r->status < 300) return json::parse(r->body, nullptr, false);
    why = fmt::format("it answered {}: {}", r->status, r->body.substr(0, 300));
    if (r->status >= 400 && r->status < 500 && r->status != 429) break;  // trying again will not help
  }
  log::info("github: POST {}{} failed: {}", cfg_.api_url, path, why);
  return std::nullopt;
}

void GitHubDeployments::post(const Job& job) {
  const std::string base = fmt::format("/repos/{}/deployments", cfg_.repo);
  if (job.state.empty()) {  // a deploy began: its deployment, in progress
    auto made = call(base, {{"ref", job.commit},
                            {"environment", cfg_.environment},
                            {"auto_merge", false},
                            {"required_contexts", json::array()},
                            {"description", job.description}});
    if (!made || !made->is_object() || !(*made)["id"].is_number_integer()) return;
    const long long id = (*made)["id"];
    deployments_[job.op] = id;
    call(fmt::format("{}/{}/statuses", base, id), {{"state", "in_progress"}, {"description", job.description}});
    return;
  }
  auto it = deployments_.find(job.op);
  if (it == deployments_.end()) return;  // it could not be created (logged)
  call(fmt::format("{}/{}/statuses", base, it->second),
       {{"state", job.state}, {"description", job.description}, {"environment", cfg_.environment}});
  deployments_.erase(it);
}

}  // namespace sm::notify
