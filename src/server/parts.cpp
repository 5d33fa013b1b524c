// The Server's parts, each built and checked on its own (server.cpp puts them
// together): the data directory's lock, the proxy, a single app's ACME, notifications
// and webhooks, a single app as a server's one app, the arguments that start the same
// daemon again. A refusal is a StartError. Split from server.cpp.

#include "server/parts.h"

#include <fmt/format.h>

#include <cctype>

#include "app/proxy_router.h"
#include "config/apps.h"
#include "log/log.h"
#include "process/port_owner.h"

namespace sm::server {
namespace fs = std::filesystem;

namespace {

git::Repository open_repo(const StartOptions& opts) {
  try {
    return git::Repository::open(fs::absolute(opts.repo));
  } catch (const git::GitError& e) {
    throw StartError(1, fmt::format("{}; pass --repo DIR with the app's git repository", e.what()));
  }
}

/// "port N is already in use by WHO; NEED in CONFIG), ...what to do": never advises
/// --no-proxy when the holder is another slot-machine (two daemons would share an app).
std::string port_taken(int port, const std::string& need, const fs::path& config) {
  const auto owner = process::port_owner(port);
  const std::string by = owner ? " by " + process::describe(*owner) : "";
  if (owner && owner->name == "slot-machine")
    return fmt::format("port {} is already in use{}; {} in {}): stop that daemon, or give this one "
                       "another port", port, by, need, config.string());
  return fmt::format("port {} is already in use{}; {} in {}): stop what holds it, choose another "
                     "port, or start with --no-proxy", port, by, need, config.string());
}

}  // namespace

/// The arguments that start this same daemon again (absolute paths: same meaning).
std::vector<std::string> start_args(const StartOptions& o, const fs::path& data_dir) {
  std::vector<std::string> a{"start", "--config", fs::absolute(o.config).lexically_normal().string(),
                             "--repo", fs::absolute(o.repo).lexically_normal().string(),
                             "--data", data_dir.string()};
  if (o.api_port) a.insert(a.end(), {"--port", std::to_string(*o.api_port)});
  if (o.no_proxy) a.push_back("--no-proxy");
  return a;
}


/// Creates the data directory and takes its lock: before any port is looked at, as a
/// second daemon on this data directory would adopt the first one's apps and kill them
/// when it stops. A single app's repository is checked first (a wrong --repo is the
/// likelier mistake); a server's apps open theirs each, an unusable one not stopping
/// the others.
files::DirLock lock_data_dir(const StartOptions& opts, bool single, const fs::path& dir) {
  if (single) open_repo(opts);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw StartError(1, fmt::format("cannot create the data directory {}: {}; pass --data DIR", dir.string(),
                                    ec.message()));
  try {
    return files::DirLock::acquire(dir);
  } catch (const files::DirLock::Held& e) {
    throw StartError(2, e.what());
  } catch (const std::exception& e) {
    throw StartError(1, e.what());
  }
}

std::shared_ptr<triggers::Receiver> make_webhooks(const config::Config& cfg, const std::string& secret) {
  if (!cfg.webhooks) return nullptr;
  return std::make_shared<triggers::Receiver>(cfg.webhooks->path, secret, cfg.webhooks->branch);
}


/// The proxy, unless --no-proxy. It listens only from the first deploy on, but a port
/// that is taken now is an error now (StartError), not at the first deploy.
std::unique_ptr<proxy::Proxy> make_proxy(const StartOptions& opts, const config::Config& cfg,
                                         const service::Listeners& given, edge::acme::Challenges& challenges,
                                         std::string local_path,
                                         std::function<proxy::LocalAnswer(const proxy::LocalRequest&)> local) {
  if (opts.no_proxy) return nullptr;
  if (cfg.tls_port && given.https_fd < 0 && !app::port_is_free(cfg.tls_port))
    throw StartError(1, port_taken(cfg.tls_port, "HTTPS needs it (\"tls.port\"", opts.config));
  for (int p : {cfg.port, cfg.internal_port})
    if (!(p == cfg.port ? given.public_fd >= 0 : given.internal_fd >= 0) && !app::port_is_free(p))
      throw StartError(1, port_taken(p, "the proxy needs it (\"port\"/\"internal_port\"", opts.config));
  proxy::Options o;
  o.public_port = cfg.port;
  o.internal_port = cfg.internal_port;
  o.backend_timeout = std::chrono::milliseconds(cfg.proxy_timeout_ms);
  o.header_timeout = std::chrono::milliseconds(cfg.proxy_header_timeout_ms);
  o.max_conns_per_ip = static_cast<size_t>(cfg.proxy_max_conns_per_ip);
  o.max_request_body = static_cast<uint64_t>(cfg.max_request_body);
  o.compress = cfg.compress;
  o.workers = cfg.proxy_workers > 0 ? static_cast<size_t>(cfg.proxy_workers) : proxy::usable_cpus();
  o.public_fd = given.public_fd;
  o.internal_fd = given.internal_fd;
  o.tls_port = cfg.tls_port;
  o.tls_cert = cfg.tls_cert.string();
  o.tls_key = cfg.tls_key.string();
  o.tls_fd = given.https_fd;
  if (cfg.acme)
    o.acme_challenge = [c = &challenges](std::string_view token) { return c->find(token); };
  if (local) {
    o.local_path = std::move(local_path);
    o.local = std::move(local);
  }
  return std::make_unique<proxy::Proxy>(std::move(o));
}

/// A single-app config as a server's one app: named after its repository's folder (so
/// /apps/NAME/ and --app NAME work too), no hosts (every request is its).
AppSpec single_spec(const StartOptions& opts, const config::Config& cfg) {
  AppSpec s;
  const fs::path repo = fs::absolute(opts.repo).lexically_normal();
  std::string name;
  for (char c : (repo.filename().empty() ? repo.parent_path() : repo).filename().string()) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name.size() < 32 && (std::isalnum(static_cast<unsigned char>(c)) || (c == '-' && !name.empty()))) name += c;
  }
  s.entry.name = config::valid_app_name(name) ? name : "app";
  s.entry.repo = repo;
  s.entry.config = fs::absolute(opts.config).lexically_normal();
  s.cfg = cfg;
  return s;
}

/// ACME (tls.acme): the certificate stored under <data>/tls when it still serves, and
/// the thread that obtains or renews it (started by serve()).
std::unique_ptr<edge::acme::Manager> make_acme(const config::Config& cfg, const fs::path& data_dir,
                                               edge::acme::Challenges& challenges, proxy::Proxy* proxy) {
  if (!proxy || cfg.acme_domains.empty()) return nullptr;
  edge::acme::ManagerOptions o;
  o.settings = {cfg.acme_directory_url, cfg.acme_ca_file, cfg.acme_email};
  o.domains = cfg.acme_domains;
  o.dir = data_dir / "tls";
  o.challenges = &challenges;
  o.install = [proxy](const fs::path& cert, const fs::path& key) { proxy->use_certificate(cert, key); };
  std::unique_ptr<edge::acme::Manager> m;
  try {
    m = std::make_unique<edge::acme::Manager>(std::move(o));
  } catch (const std::exception& e) {
    throw StartError(1, e.what());  // <data>/tls is unusable
  }
  if (auto files = m->usable()) {
    try {
      proxy->use_certificate(files->first, files->second);
      log::info("HTTPS on port {} for {} with the certificate in {}; plain HTTP on port {} redirects to it",
                cfg.tls_port, fmt::join(cfg.acme_domains, ", "), files->first.string(), cfg.port);
      return m;
    } catch (const std::exception& e) {
      log::info("ACME: the stored certificate cannot be used ({}); getting a new one", e.what());
    }
  }
  log::info("HTTPS on port {} for {}: no certificate yet, asking {}; meanwhile plain HTTP on port {} "
            "answers ACME challenges and 503, and HTTPS handshakes fail",
            cfg.tls_port, fmt::join(cfg.acme_domains, ", "), cfg.acme_directory_url, cfg.port);
  return m;
}

std::unique_ptr<notify::Notifier> make_notifier(const config::Config& cfg, const StartOptions& opts,
                                                const fs::path& data_dir) {
  if (cfg.notify.empty() && !cfg.github) return nullptr;
  try {
    return std::make_unique<notify::Notifier>(cfg, data_dir);
  } catch (const config::ConfigError& e) {
    throw StartError(2, fmt::format("{} (in {})", e.what(), opts.config.string()));
  }
}

}  // namespace sm::server
