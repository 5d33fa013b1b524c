#pragma once
// The Server's parts, built one at a time (parts.cpp); each throws StartError when it
// cannot be had.

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "edge/acme/client.h"
#include "edge/acme/manager.h"
#include "files/dir_lock.h"
#include "notify/notifier.h"
#include "proxy/proxy.h"
#include "server/hosted.h"
#include "server/settings.h"
#include "service/listen_fds.h"
#include "triggers/receiver.h"

namespace sm::server {

/// The arguments that start this same daemon again (absolute paths: same meaning).
std::vector<std::string> start_args(const StartOptions& o, const std::filesystem::path& data_dir);

/// Creates the data directory and takes its lock, after checking a single app's
/// repository (`single`).
files::DirLock lock_data_dir(const StartOptions& opts, bool single, const std::filesystem::path& dir);

/// A single app's webhook receiver (config "webhooks"), or null.
std::shared_ptr<triggers::Receiver> make_webhooks(const config::Config& cfg, const std::string& secret);

/// The proxy, unless --no-proxy; requests under `local_path` go to `local` (webhooks).
std::unique_ptr<proxy::Proxy> make_proxy(const StartOptions& opts, const config::Config& cfg,
                                         const service::Listeners& given, edge::acme::Challenges& challenges,
                                         std::string local_path,
                                         std::function<proxy::LocalAnswer(const proxy::LocalRequest&)> local);

/// A single-app config as a server's one app.
AppSpec single_spec(const StartOptions& opts, const config::Config& cfg);

/// A single app's ACME manager (tls.acme with domains), its stored certificate installed.
std::unique_ptr<edge::acme::Manager> make_acme(const config::Config& cfg, const std::filesystem::path& data_dir,
                                               edge::acme::Challenges& challenges, proxy::Proxy* proxy);

/// A single app's notifier (notify, github), or null.
std::unique_ptr<notify::Notifier> make_notifier(const config::Config& cfg, const StartOptions& opts,
                                                const std::filesystem::path& data_dir);

}  // namespace sm::server
