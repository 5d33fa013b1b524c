#include "service/units.h"

#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <ostream>

#include "config/apps.h"
#include "files/atomic_file.h"
#include "service/upgrade.h"

namespace sm::service {
namespace fs = std::filesystem;

namespace {

/// A path as one systemd command-line word: quoted when it holds spaces or quotes,
/// '%' doubled (systemd expands specifiers in Exec lines).
std::string word(const std::string& s) {
  std::string out;
  bool quote = s.find_first_of(" \t\"'\\") != std::string::npos;
  for (char c : s) {
    if (c == '%') out += "%%";
    else if (quote && (c == '"' || c == '\\')) out += std::string("\\") + c;
    else out += c;
  }
  return quote ? "\"" + out + "\"" : out;
}

std::string owner_of(const fs::path& p) {
  struct stat st {};
  if (stat(p.c_str(), &st) != 0 || st.st_uid == 0) return "";
  if (const passwd* pw = getpwuid(st.st_uid)) return pw->pw_name;
  return "";
}

}  // namespace

std::string default_unit_name(const fs::path& dir) {
  std::string name = dir.filename().string();
  if (name.empty()) name = "app";
  for (char& c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '-';
  return "slot-machine-" + name;
}

std::string service_unit(const UnitSpec& s, const config::Config& cfg) {
  std::string start = fmt::format("{} start --config {} --repo {} --data {}", word(s.binary.string()),
                                  word(s.config.string()), word(s.repo.string()), word(s.data.string()));
  if (!s.proxy) start += " --no-proxy";
  // Long enough for the daemon to drain every app (SIGTERM, drain_timeout_ms, SIGKILL).
  const int stop_s = cfg.drain_timeout_ms / 1000 + 30;
  std::string u = fmt::format(
      "# Written by `slot-machine systemd` for {config}.\n"
      "[Unit]\n"
      "Description=slot-machine: zero-downtime deploys of {what}\n"
      "Requires={name}.socket\n"
      "After=network.target {name}.socket\n"
      "\n"
      "[Service]\n"
      "Type=notify\n"
      "# The daemon started by an upgrade sends STATUS= too.\n"
      "NotifyAccess=all\n"
      "ExecStart={start}\n"
      "# Upgrade in place: the binary now installed takes over sockets and apps.\n"
      "ExecReload={bin} upgrade --api-port {api}\n"
      "# Stop: SIGTERM to the daemon only, which drains the apps; what is left after\n"
      "# TimeoutStopSec is killed.\n"
      "KillMode=mixed\n"
      "TimeoutStopSec={stop_s}\n"
      "Restart=on-failure\n"
      "RestartSec=1\n"
      "WorkingDirectory={dir}\n",
      fmt::arg("config", s.config.string()),
      fmt::arg("what", s.server ? "the apps of " + s.config.string() : s.repo.string()),
      fmt::arg("name", s.name), fmt::arg("start", start), fmt::arg("bin", word(s.binary.string())),
      fmt::arg("api", cfg.api_port), fmt::arg("stop_s", stop_s),
      fmt::arg("dir", word(s.config.parent_path().string())));
  if (!s.user.empty()) u += "User=" + s.user + "\n";
  u += "\n[Install]\nWantedBy=multi-user.target\n";
  return u;
}

std::string socket_unit(const UnitSpec& s, const config::Config& cfg) {
  std::string u = fmt::format(
      "# Written by `slot-machine systemd` for {}.\n"
      "# systemd holds these ports while the daemon restarts or upgrades: connections wait\n"
      "# in the queue instead of being refused.\n"
      "[Unit]\n"
      "Description=slot-machine sockets for {}\n"
      "\n"
      "[Socket]\n"
      "Service={}.service\n"
      "ListenStream={}:{}\n",
      s.config.string(), s.server ? "the apps of " + s.config.string() : s.repo.string(), s.name, cfg.api_bind,
      cfg.api_port);
  if (s.proxy) {
    u += fmt::format("ListenStream=0.0.0.0:{}\n", cfg.port);  // where the proxy binds it
    if (cfg.internal_port != cfg.port) u += fmt::format("ListenStream=127.0.0.1:{}\n", cfg.internal_port);
    if (cfg.tls_port) u += fmt::format("ListenStream=0.0.0.0:{}\n", cfg.tls_port);  // HTTPS
  }
  u += "Backlog=4096\n\n[Install]\nWantedBy=sockets.target\n";
  return u;
}

int write_units(const UnitOptions& o, std::ostream& out, std::ostream& err) {
  std::error_code ec;
  const fs::path config = fs::absolute(o.config).lexically_normal();
  config::Config cfg;
  bool server = false;
  try {
    std::ifstream in(config, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    server = config::is_server_config(text);
    cfg = server ? config::load_server(config).server : config::load(config).config;
    if (server && o.no_proxy)
      throw config::ConfigError("--no-proxy cannot serve a config with \"apps\" (the apps share the public port "
                                "through the proxy)");
  } catch (const config::ConfigError& e) {
    err << fmt::format("slot-machine: {} (in {}); the units are written from a valid config\n",
                       e.what(), config.string());
    return 2;
  }
  UnitSpec s;
  s.name = o.name.empty() ? default_unit_name(config.parent_path()) : o.name;
  if (s.name.find('/') != std::string::npos || s.name.ends_with(".service") || s.name.ends_with(".socket")) {
    err << fmt::format("slot-machine: --name \"{}\" must be a unit name without suffix or '/', "
                       "like slot-machine-myapp\n", s.name);
    return 2;
  }
  s.binary = own_executable();
  s.config = config;
  s.repo = fs::absolute(o.repo.empty() ? config.parent_path() : o.repo).lexically_normal();
  s.server = server;
  s.data = fs::absolute(!o.data.empty() ? o.data
                        : server      ? fs::path("/var/lib") / s.name
                                      : s.repo / ".slot-machine")
               .lexically_normal();
  s.user = o.user.empty() ? owner_of(config) : (o.user == "root" ? "" : o.user);
  s.proxy = !o.no_proxy;

  const fs::path service = o.out / (s.name + ".service");
  const fs::path socket = o.out / (s.name + ".socket");
  if (!o.force)
    for (const auto& p : {service, socket})
      if (fs::exists(p, ec)) {
        err << fmt::format("slot-machine: {} exists; pass --force to overwrite it\n", p.string());
        return 1;
      }
  for (const auto& [path, text] : {std::pair{service, service_unit(s, cfg)}, std::pair{socket, socket_unit(s, cfg)}}) {
    try {
      files::write_atomic(path, text);
    } catch (const std::runtime_error& e) {
      err << fmt::format("slot-machine: {}; pass --out DIR for another directory\n", e.what());
      return 1;
    }
    out << path.string() << "\n";
  }
  return 0;
}

}  // namespace sm::service
