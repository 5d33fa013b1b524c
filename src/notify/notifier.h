#pragma once
// Notifications (contract §9, config "notify" and "github"): a listener of the daemon's
// events that turns the ones targets care about into notices in the outbox, and deploys
// into GitHub deployment updates. It never blocks the thread that publishes (the deploy's).

#include <filesystem>
#include <memory>
#include <string>

#include "config/config.h"
#include "app/events.h"
#include "notify/github.h"
#include "notify/outbox.h"

namespace sm::notify {

class Notifier {
 public:
  /// Reads each target's secret file and the GitHub token (throws config::ConfigError
  /// naming "notify[i].secret_file" or "github.token_file") and loads <data>/outbox/.
  /// `app`: one of a server's apps: every notice says it ("app").
  Notifier(const config::Config& cfg, const std::filesystem::path& data_dir, Sender send = post,
           std::string app = "");
  /// Starts listening to `events` and says daemon_started with what is live.
  void start(app::Events& events, const std::string& live_commit, const std::string& live_slot);
  /// Stops listening and delivering; what is undelivered stays for the next start.
  void stop();
  const Outbox& outbox() const { return *outbox_; }

 private:
  /// `n` with the app's name, when it is one of a server's apps.
  Notice named(Notice n) const;

  std::string host_;
  std::string app_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<GitHubDeployments> github_;
  app::Events::Subscription listening_;
};

}  // namespace sm::notify
