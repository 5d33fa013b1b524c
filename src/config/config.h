#pragma once
// slot-machine.json: load, defaults, validation with field-named errors.

#include <filesystem>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cron/schedule.h"

namespace sm::config {

/// A config problem a user must fix. what() is one line naming the field,
/// e.g. `config: "port" must be 1-65535, got 70000`.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The validated contents of slot-machine.json, with every default applied.
struct Config {
  std::string start_command;
  std::string setup_command;          // empty: no setup step
  int port = 3000;
  int internal_port = 3000;           // defaults to `port` when absent
  std::string health_endpoint = "/healthz";
  int health_timeout_ms = 10000;
  int drain_timeout_ms = 5000;
  int setup_timeout_ms = 600000;      // setup still running then is killed; 0 = no limit
  std::filesystem::path env_file;     // absolute, or empty when not configured
  int api_port = 9100;
  std::string api_bind = "127.0.0.1";
  int proxy_timeout_ms = 30000;       // proxy mode: no response header by then → 504
  int proxy_header_timeout_ms = 10000;  // a request header not complete by then → 408
  int proxy_max_conns_per_ip = 256;     // open connections one client address may hold; 0 = any
  int proxy_workers = 0;                // the proxy's event loops (1-64); 0: one per CPU this process may use
  long long log_max_bytes = 10 << 20;  // a slot log over this is rotated
  long long max_request_body = 0;      // bytes; a larger request body gets 413 from the proxy (0: no limit)
  // Proxy mode: codings the proxy may compress answers with, best first (contract §15); empty: none.
  std::vector<std::string> compress{"br", "gzip"};
  int log_keep = 3;                    // rotated files kept per slot (slot-a.log.1 ...)
  std::filesystem::path api_token_file;  // absolute, or empty: no token (unless the env has one)
  std::filesystem::path api_tls_cert, api_tls_key;  // absolute, or empty: the API speaks plain HTTP
  bool restart_on_failure = false;  // "restart": "on-failure": a crashed live app is started again
  std::vector<std::string> shared_dirs;  // relative paths inside a slot, kept in <data>/shared/
  // Proxy mode: the app a deploy or rollback replaces stays up, unrouted ("warm") or
  // SIGSTOPped ("frozen"), for standby_ttl_s, so a rollback to it only switches.
  std::string standby = "off";  // "off", "warm" or "frozen"
  int standby_ttl_s = 600;
  int auto_rollback_s = 0;  // a deploy whose app fails within this many seconds is rolled back; 0 = off
  int tls_port = 0;                               // proxy mode: HTTPS on this port; 0: no HTTPS
  std::filesystem::path tls_cert, tls_key;        // absolute, when tls_port without ACME
  // tls.acme: certificates from an ACME CA for these names (a server config: for each
  // app's hosts, and acme_domains stays empty).
  bool acme = false;
  std::vector<std::string> acme_domains;
  // One of a server's apps with "user": its setup and app run as this uid and gid, and
  // its data directory is theirs (-1: the daemon's own; set by the server, not read).
  int run_uid = -1, run_gid = -1;
  std::string acme_email;
  std::string acme_directory_url = "https://acme-v02.api.letsencrypt.org/directory";
  std::filesystem::path acme_ca_file;  // absolute, or empty: the system's trust store
  // webhooks (contract §9): signed push deliveries under `path` on the public port(s)
  // deploy pushes to `branch`, fetched from `remote`.
  struct Webhooks {
    std::filesystem::path secret_file;  // absolute; required
    std::string branch = "main";
    std::string remote = "origin";
    std::string path = "/.slot-machine/hooks";
    std::filesystem::path token_file;  // absolute, or empty: HTTPS fetches without a token
  };
  std::optional<Webhooks> webhooks;
  // notify (contract §9): each target gets the events it names, POSTed from an outbox.
  struct NotifyTarget {
    std::string url;                    // http:// or https://
    std::vector<std::string> events;    // names from kNotifyEvents; every one when absent
    std::filesystem::path secret_file;  // absolute, or empty: unsigned
    std::string format = "json";        // "json" or "slack"
  };
  std::vector<NotifyTarget> notify;
  // github (contract §9): a GitHub deployment per deploy, with its statuses.
  struct GitHub {
    std::string repo;                  // "owner/name"
    std::filesystem::path token_file;  // absolute; required
    std::string api_url = "https://api.github.com";  // no trailing '/'
    std::string environment = "production";
  };
  std::optional<GitHub> github;
  // workers (contract §16): processes beside the web one, in the live slot, by name.
  std::map<std::string, std::string> workers;
  // cron (contract §16): commands run in the live slot at the times of their schedule.
  struct CronJob {
    std::string name, schedule, command;
    cron::Schedule when;
  };
  std::vector<CronJob> cron;
};

/// The "workers" object (processes.cpp). Throws ConfigError naming the worker.
std::map<std::string, std::string> parse_workers(const nlohmann::json& w);

/// The "cron" array (processes.cpp). Throws ConfigError naming the entry and field.
std::vector<Config::CronJob> parse_cron(const nlohmann::json& c);

/// A worker's or cron job's name: [a-z0-9-]{1,32}.
bool valid_process_name(const std::string& name);

/// The events a notify target can name.
inline const std::vector<std::string> kNotifyEvents = {"deploy_started", "deploy_succeeded", "deploy_failed",
                                                       "rollback",       "auto_rollback",    "app_crashed",
                                                       "app_restarted",  "daemon_started",   "worker_crashed",
                                                       "cron_failed",    "canary_started",   "canary_promoted",
                                                       "canary_aborted"};

/// The "github" object (triggers.cpp). Throws ConfigError naming the field.
Config::GitHub parse_github(const nlohmann::json& g, const std::filesystem::path& base_dir);

/// The "notify" array (triggers.cpp). Throws ConfigError naming the entry and field.
std::vector<Config::NotifyTarget> parse_notify(const nlohmann::json& n, const std::filesystem::path& base_dir);

/// The "webhooks" object (triggers.cpp). Throws ConfigError naming the field.
Config::Webhooks parse_webhooks(const nlohmann::json& w, const std::filesystem::path& base_dir);

/// What loading produced besides the config: warnings the daemon logs (unknown keys).
struct Loaded {
  Config config;
  std::vector<std::string> warnings;
};

/// Parses and validates config text. `base_dir` resolves a relative env_file.
/// Throws ConfigError.
Loaded parse(const std::string& text, const std::filesystem::path& base_dir);

/// The top-level keys of a server config (contract §13) besides "apps": the server's
/// own fields. In an app's own file they are ignored, with one warning naming them.
inline const std::vector<std::string> kServerKeys = {
    "port",           "internal_port",    "tls",     "api_port",
    "api_bind",       "api_tls",          "api_token_file", "proxy_timeout_ms",
    "proxy_header_timeout_ms", "proxy_max_conns_per_ip", "proxy_workers", "notify", "github"};

/// Reads and validates the file at `path`. Throws ConfigError (also when it is missing).
Loaded load(const std::filesystem::path& path);

/// What the thin clients take from the config at `path`, when the file exists: where the
/// API listens and how to speak to it. Validates nothing else: the daemon reports the rest.
struct ClientSettings {
  int api_port = 9100;
  std::filesystem::path api_token_file;  // absolute, or empty
  std::filesystem::path api_tls_cert;    // absolute, or empty: plain HTTP
};
/// Throws ConfigError when the file is not valid JSON (there is no api_port to read then)
/// or api_port itself is unusable.
ClientSettings client_settings(const std::filesystem::path& path);

/// Port validation shared by config fields ("port") and CLI flags ("--port"): throws
/// unless 1 <= port <= 65535, naming the field or the flag.
void check_port(const std::string& name, long long port);

}  // namespace sm::config
