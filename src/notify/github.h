#pragma once
// GitHub deployments (contract §9, config "github"): for each deploy, a deployment of
// its commit in the repository, an in_progress status when it starts and success or
// failure when it ends, posted by a thread of its own (a deploy never waits for GitHub).
// Kept in memory only: statuses not posted when the daemon stops are lost (logged).

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "config/config.h"
#include "app/events.h"
#include "threads/inbox.h"

namespace sm::notify {

class GitHubDeployments {
 public:
  GitHubDeployments(config::Config::GitHub cfg, std::string token);
  ~GitHubDeployments() { stop(); }
  GitHubDeployments(const GitHubDeployments&) = delete;
  GitHubDeployments& operator=(const GitHubDeployments&) = delete;

  /// Called on the publishing thread: takes deploy Started and Finished events; never
  /// blocks on the network.
  void on(const app::Event& e);
  /// Ends the thread after the request in flight (what is queued is dropped, logged).
  void stop();

 private:
  struct Job {
    uint64_t op;
    std::string commit, state, description;  // state "" : create the deployment
  };
  void post(const Job& job);
  /// One API call, tried 3 times (1 s, then 2 s apart) unless it is refused with a 4xx.
  /// The answer's JSON, or nullopt (logged).
  std::optional<nlohmann::json> call(const std::string& path, const nlohmann::json& body);

  const config::Config::GitHub cfg_;
  const std::string token_;
  std::map<uint64_t, long long> deployments_;  // operation → deployment id (the inbox's thread)
  threads::Inbox<Job> jobs_{threads::Keep::All};
};

}  // namespace sm::notify
