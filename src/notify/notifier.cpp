#include "notify/notifier.h"

#include <fmt/format.h>
#include <unistd.h>

#include "edge/api_token.h"

namespace sm::notify {

namespace {
std::string hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}
}  // namespace

Notifier::Notifier(const config::Config& cfg, const std::filesystem::path& data_dir, Sender send, std::string app)
    : host_(hostname()), app_(std::move(app)) {
  std::vector<Target> targets;
  for (size_t i = 0; i < cfg.notify.size(); ++i) {
    Target t{cfg.notify[i], ""};
    if (!t.config.secret_file.empty())
      t.secret = edge::read_secret_file(t.config.secret_file, fmt::format("notify[{}].secret_file", i),
                                        "a notification secret", "write the secret the receiver checks into it");
    targets.push_back(std::move(t));
  }
  if (cfg.github)
    github_ = std::make_unique<GitHubDeployments>(
        *cfg.github, edge::read_secret_file(cfg.github->token_file, "github.token_file", "the GitHub token",
                                            "put a token that may create deployments in github.repo into it"));
  outbox_ = std::make_unique<Outbox>(data_dir / "outbox", std::move(targets), std::move(send));
}

void Notifier::start(app::Events& events, const std::string& live_commit, const std::string& live_slot) {
  listening_ = events.subscribe([this](const app::Event& e) {
    if (auto n = notice_of(e, host_)) outbox_->post_notice(named(std::move(*n)));
    if (github_) github_->on(e);
  });
  outbox_->post_notice(named(daemon_started(live_commit, live_slot, host_)));
}

Notice Notifier::named(Notice n) const {
  if (!app_.empty()) n.fields["app"] = app_;
  return n;
}

void Notifier::stop() {
  listening_.reset();
  outbox_->stop();
  if (github_) github_->stop();
}

}  // namespace sm::notify
