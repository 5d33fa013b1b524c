#pragma once
// Which apps this daemon runs (contract §13): what the API, the dashboard and the
// metrics look an app up in. The server publishes a new list whole when it starts or
// reloads; readers take the list they find and keep it (and its apps) for as long as
// they use it, without a lock.

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/app.h"

namespace sm::app {

/// One app as the daemon lists it.
struct Listed {
  std::string name;
  std::vector<std::string> hosts;  // as the config writes them; none for a single-app config
  std::filesystem::path repo;      // absolute
  std::shared_ptr<App> app;        // null when it could not be set up: see `error`
  std::string error;               // why it does not run ("" when it does)
};

class Directory {
 public:
  using List = std::shared_ptr<const std::vector<Listed>>;

  /// `server_config`: the config has "apps" (each app is addressed by name), rather than
  /// being one app's own config.
  explicit Directory(bool server_config) : server_config_(server_config) {}

  List list() const { return apps_.load(); }
  void publish(std::vector<Listed> apps) { apps_.store(std::make_shared<const std::vector<Listed>>(std::move(apps))); }
  bool server_config() const { return server_config_; }

  /// The app named `name` in `list`, or nullptr.
  static const Listed* find(const std::vector<Listed>& list, std::string_view name) {
    for (const auto& l : list)
      if (l.name == name) return &l;
    return nullptr;
  }

  /// The running app an app-scoped request is for: the one `name` names (/apps/NAME/...),
  /// or the only one when `name` is nullopt. Otherwise `status` and `error` say why not:
  /// 404 no such app, 400 several apps and no name, 503 the app is listed with an error.
  struct Lookup {
    const Listed* listed = nullptr;  // the app, running (status 200); null otherwise
    int status = 200;
    std::string error;
  };
  static Lookup lookup(const std::vector<Listed>& list, const std::optional<std::string>& name) {
    std::string names;
    for (const auto& l : list) names += (names.empty() ? "" : ", ") + l.name;
    const Listed* l = nullptr;
    if (name) {
      l = find(list, *name);
      if (!l)
        return {nullptr, 404,
                "no app named \"" + name->substr(0, 64) + "\" here; the apps are: " + names + " (GET /apps lists them)"};
    } else if (list.size() == 1) {
      l = &list.front();
    } else {
      return {nullptr, 400, "several apps: use /apps/NAME/..."};
    }
    if (!l->app)
      return {nullptr, 503, "app " + l->name + " is not running: " + l->error + "; fix that, then `slot-machine reload`"};
    return {l, 200, ""};
  }

 private:
  const bool server_config_;
  std::atomic<List> apps_{std::make_shared<const std::vector<Listed>>()};
};

}  // namespace sm::app
