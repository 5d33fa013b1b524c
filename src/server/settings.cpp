#include "server/settings.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "config/env_file.h"
#include "edge/api_token.h"
#include "edge/tls_files.h"
#include "log/log.h"

namespace sm::server {
namespace fs = std::filesystem;

namespace {

/// The API's token and TLS from the config (and $SLOT_MACHINE_API_TOKEN), after checking
/// every certificate (the public side's too). Throws ConfigError: an unusable token or
/// certificate, or a non-loopback api_bind without a token.
api::ApiSecurity api_security(const config::Config& cfg) {
  api::ApiSecurity s;
  s.token = edge::find_token(cfg.api_token_file);
  if (!s.token && !edge::is_loopback(cfg.api_bind))
    throw config::ConfigError(fmt::format(
        "config: \"api_bind\" is {}, reachable from other machines, but the API has no token: "
        "set \"api_token_file\" (or ${}), or bind 127.0.0.1",
        cfg.api_bind, edge::kTokenVar));
  if (cfg.tls_port && !cfg.acme) {
    const std::string expires = edge::check_cert_files({cfg.tls_cert, cfg.tls_key}, "tls");
    log::info("HTTPS on port {} with {} (expires {}); plain HTTP on port {} redirects to it",
              cfg.tls_port, cfg.tls_cert.string(), expires, cfg.port);
  }
  if (!cfg.api_tls_cert.empty()) {
    s.tls = {cfg.api_tls_cert, cfg.api_tls_key};
    const std::string expires = edge::check_cert_files(s.tls, "api_tls");
    log::info("API over HTTPS with {} (expires {})", cfg.api_tls_cert.string(), expires);
  }
  return s;
}

/// What needs the proxy, which --no-proxy leaves out: "" when the config needs none of it.
std::string needs_proxy(const config::Config& cfg) {
  if (cfg.standby != "off")
    return "config: \"standby\" needs proxy mode (the old app keeps running beside the new one, which only "
           "the proxy can switch between); set it to \"off\" or start without --no-proxy";
  if (cfg.tls_port)
    return "config: \"tls\" needs proxy mode (the daemon terminates TLS in front of the app); start without "
           "--no-proxy";
  if (cfg.webhooks)
    return "config: \"webhooks\" needs proxy mode (the daemon answers them on the public port, in front of "
           "the app); start without --no-proxy";
  return "";
}

/// Whether the file at `path` holds a server config (with "apps").
bool is_server_config(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return config::is_server_config(ss.str());
}

/// A server config (contract §13): the server's fields checked as for one app; each
/// app's own file is read by the Server, an unusable one not stopping the others.
Settings read_server_settings(const StartOptions& opts) {
  if (opts.no_proxy)
    throw config::ConfigError("--no-proxy cannot serve a config with \"apps\": several apps share the public port "
                              "through the proxy; start without --no-proxy");
  Settings s;
  s.server = config::load_server(opts.config);
  s.cfg = s.server->server;
  if (opts.api_port) s.cfg.api_port = *opts.api_port;
  if (s.cfg.acme)
    log::info("HTTPS on port {}: each app's certificate for its hosts from {}; plain HTTP on port {} redirects to "
              "it", s.cfg.tls_port, s.cfg.acme_directory_url, s.cfg.port);
  if (s.cfg.github)
    throw config::ConfigError("\"github\" (deployments of one GitHub repository) with \"apps\" is not supported by "
                              "this version yet: each app has its own repository; remove it, or run one daemon per "
                              "app");
  s.security = api_security(s.cfg);
  return s;
}

}  // namespace

Settings read_settings(const StartOptions& opts) {
  const std::string in = opts.config.string();
  if (opts.api_port) {
    try {
      config::check_port("--port", *opts.api_port);
    } catch (const config::ConfigError& e) {
      throw StartError(2, e.what());
    }
  }
  std::error_code ec;
  if (!fs::exists(opts.config, ec))
    throw StartError(2, fmt::format("no config file at {}: run `slot-machine init` to create slot-machine.json, "
                                    "or pass --config PATH",
                                    in));
  Settings s;
  try {
    if (is_server_config(opts.config)) return read_server_settings(opts);
    auto loaded = config::load(opts.config);
    for (const auto& w : loaded.warnings) log::info("warning: {}", w);
    s.cfg = std::move(loaded.config);
    if (opts.api_port) s.cfg.api_port = *opts.api_port;
    if (!s.cfg.env_file.empty()) config::load_env_file(s.cfg.env_file);
    s.security = api_security(s.cfg);
    if (opts.no_proxy) {
      if (const std::string why = needs_proxy(s.cfg); !why.empty()) throw config::ConfigError(why);
    }
    if (s.cfg.webhooks)
      s.webhook_secret =
          edge::read_secret_file(s.cfg.webhooks->secret_file, "webhooks.secret_file", "the webhook secret",
                                 "write the secret your forge signs with into it and chmod 600 it");
  } catch (const config::ConfigError& e) {
    throw StartError(2, fmt::format("{} (in {})", e.what(), in));
  }
  return s;
}

}  // namespace sm::server
