#include "config/config.h"
#include "config/apps.h"
#include "config/fields.h"
#include "config/keys.h"
#include "log/json_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <sstream>

namespace sm::config {
namespace {

using nlohmann::json;
using namespace fields;

/// Which fields a document may hold: all of them (one app), the server's (a config with
/// "apps"), or an app's own (within a server; start_command required).
enum class Role { Single, Server, App };

Loaded parse_fields(const json& doc, const std::filesystem::path& base_dir, Role role);

/// parse_fields(), with the keys the config does not know as warnings, and named in the
/// error too when one is thrown (a typo'd key is often why a field is missing or wrong).
Loaded parse_known(const json& doc, const std::filesystem::path& base_dir, Role role) {
  const std::vector<std::string> unknown = unknown_keys(doc);
  try {
    Loaded out = parse_fields(doc, base_dir, role);
    for (const auto& u : unknown) out.warnings.push_back(fmt::format("config: {} ignored", u));
    return out;
  } catch (const ConfigError& e) {
    if (unknown.empty()) throw;
    throw ConfigError(fmt::format("{}; {}", e.what(), fmt::join(unknown, "; ")));
  }
}

int get_ms(const json& doc, const std::string& key, int fallback, long long min) {
  long long v = get_int(doc, key, fallback);
  if (v < min || v > 24LL * 3600 * 1000)
    throw ConfigError(fmt::format("config: \"{}\" must be {}-86400000 milliseconds, got {}",
                                  key, min, v));
  return static_cast<int>(v);
}

int get_port(const json& doc, const std::string& key, int fallback) {
  long long v = get_int(doc, key, fallback);
  check_port(key, v);
  return static_cast<int>(v);
}


/// "standby", "standby_ttl_s", "auto_rollback_s" (contract §10).
void get_standby(const json& doc, Config& c, std::vector<std::string>& warnings) {
  c.standby = get_string(doc, "standby", c.standby);
  if (c.standby != "off" && c.standby != "warm" && c.standby != "frozen")
    throw ConfigError(fmt::format("config: \"standby\" must be \"off\", \"warm\" or \"frozen\", got \"{}\"",
                                  c.standby));
  const long long ttl = get_int(doc, "standby_ttl_s", c.standby_ttl_s);
  if (ttl < 10 || ttl > 7 * 86400)
    throw ConfigError(fmt::format("config: \"standby_ttl_s\" must be 10-604800 seconds, got {}", ttl));
  c.standby_ttl_s = static_cast<int>(ttl);
  const long long window = get_int(doc, "auto_rollback_s", c.auto_rollback_s);
  if (window < 0 || window > 86400)
    throw ConfigError(fmt::format("config: \"auto_rollback_s\" must be 0-86400 seconds (0 = off), got {}", window));
  c.auto_rollback_s = static_cast<int>(window);
  if (c.standby != "off" && c.auto_rollback_s > c.standby_ttl_s)
    warnings.push_back(fmt::format(
        "config: \"auto_rollback_s\" ({} s) is longer than \"standby_ttl_s\" ({} s): an auto-rollback after the "
        "standby has stopped restarts the previous app instead of switching to it",
        c.auto_rollback_s, c.standby_ttl_s));
}

/// "compress": ["br", "gzip"] (the default), in the order to prefer; [] turns it off.
std::vector<std::string> get_compress(const json& doc, std::vector<std::string> fallback) {
  if (!doc.contains("compress")) return fallback;
  const json& v = doc.at("compress");
  auto bad = [&](const std::string& why) {
    return ConfigError(fmt::format("config: \"compress\" {}; give the codings to use, best first, from \"br\" and "
                                   "\"gzip\" (the default is [\"br\", \"gzip\"]; [] turns compression off)",
                                   why));
  };
  if (!v.is_array()) throw bad(fmt::format("must be a list, got {} ({})", type_name(v), log::json_text(v)));
  std::vector<std::string> out;
  for (const json& e : v) {
    if (!e.is_string() || (e != "br" && e != "gzip"))
      throw bad(fmt::format("holds {}, not a coding slot-machine compresses with", log::json_text(e)));
    if (std::find(out.begin(), out.end(), e.get<std::string>()) != out.end())
      throw bad(fmt::format("names \"{}\" twice", e.get<std::string>()));
    out.push_back(e.get<std::string>());
  }
  return out;
}

/// "shared_dirs": ["data", "var/uploads"]: relative paths that stay inside the slot.
std::vector<std::string> get_shared_dirs(const json& doc) {
  std::vector<std::string> out;
  if (!doc.contains("shared_dirs")) return out;
  const json& v = doc.at("shared_dirs");
  if (!v.is_array())
    throw ConfigError(fmt::format("config: \"shared_dirs\" must be an array of paths like [\"data\"], got {}",
                                  type_name(v)));
  for (const json& e : v) {
    if (!e.is_string())
      throw ConfigError(fmt::format("config: \"shared_dirs\" entries must be strings, got {} ({})",
                                    type_name(e), log::json_text(e)));
    std::string d = e.get<std::string>();
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    auto bad = [&](const char* why) {
      return ConfigError(fmt::format("config: \"shared_dirs\" entry \"{}\" {}", e.get<std::string>(), why));
    };
    if (d.empty() || d == "/") throw bad("is empty; name a directory inside the slot, like \"data\"");
    if (d.front() == '/') throw bad("is absolute; give a path inside the slot, like \"data\"");
    if (d.find_first_of("\n\r\t\\") != std::string::npos || d.find('\0') != std::string::npos)
      throw bad("holds a control character or backslash");
    if (d.find("//") != std::string::npos) throw bad("has an empty component (\"//\")");
    const std::filesystem::path p(d);
    for (const auto& part : p)
      if (part == ".." || part == ".") throw bad("must not contain \".\" or \"..\" (it must stay inside the slot)");
    if (*p.begin() == ".git") throw bad("is inside .git");
    for (const auto& other : out) {
      const bool nested = d.rfind(other + "/", 0) == 0 || other.rfind(d + "/", 0) == 0;
      if (other == d) throw bad("is listed twice");
      if (nested) throw bad(fmt::format("is inside \"{}\" or holds it; list one of them", other).c_str());
    }
    out.push_back(d);
  }
  return out;
}

/// nlohmann's parse error without its "[json.exception...]" prefix, with a hint for the
/// commonest slip (a comma after the last entry).
std::string json_error_text(const json::exception& e) {
  std::string what = e.what();
  if (what.rfind("[json.exception.", 0) == 0 && what.find("] ") != std::string::npos)
    what.erase(0, what.find("] ") + 2);
  if (what.find("unexpected '}'") != std::string::npos || what.find("unexpected ']'") != std::string::npos)
    what += " (a comma after the last entry?)";
  return what;
}

json parse_json(const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number too large
    throw ConfigError(fmt::format("config: not valid JSON: {}", json_error_text(e)));
  }
}


std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ConfigError(fmt::format(
        "config: cannot read {}; run `slot-machine init` to create slot-machine.json, or pass "
        "--config PATH",
        path.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

void check_port(const std::string& name, long long port) {
  if (port >= 1 && port <= 65535) return;
  if (name.rfind("--", 0) == 0)  // a command-line flag, not a config field
    throw ConfigError(fmt::format("{} must be 1-65535, got {}", name, port));
  throw ConfigError(fmt::format("config: \"{}\" must be 1-65535, got {}", name, port));
}

Loaded parse(const std::string& text, const std::filesystem::path& base_dir) {
  json doc = parse_json(text);
  if (!doc.is_object())
    throw ConfigError(fmt::format("config: must be a JSON object, got {}", doc.type_name()));

  if (doc.contains("apps"))  // parse_server() reads it: `start` and `systemd` tell the two apart first
    throw ConfigError("config: this file has \"apps\": it is a server config (several apps, contract §13), not one "
                      "app's config; `slot-machine start --config` it, and give each app its own file");
  return parse_known(doc, base_dir, Role::Single);
}

namespace {

Loaded parse_fields(const json& doc, const std::filesystem::path& base_dir, Role role) {
  Loaded out;
  Config& c = out.config;
  if (role != Role::Server) {
    if (!doc.contains("start_command"))
      throw ConfigError("config: \"start_command\" is required (the command that starts your app)");
    c.start_command = get_string(doc, "start_command", "");
    if (c.start_command.find_first_not_of(" \t\r\n") == std::string::npos)
      throw ConfigError("config: \"start_command\" must not be empty");
  }
  c.setup_command = get_string(doc, "setup_command", "");
  c.port = get_port(doc, "port", c.port);
  c.internal_port = get_port(doc, "internal_port", c.port);
  c.health_endpoint = get_string(doc, "health_endpoint", c.health_endpoint);
  if (c.health_endpoint.empty() || c.health_endpoint[0] != '/' ||
      c.health_endpoint.find_first_of(" \t\r\n") != std::string::npos)
    throw ConfigError(fmt::format(
        "config: \"health_endpoint\" must be a path starting with '/', got \"{}\"",
        c.health_endpoint));
  c.health_timeout_ms = get_ms(doc, "health_timeout_ms", c.health_timeout_ms, 1);
  c.drain_timeout_ms = get_ms(doc, "drain_timeout_ms", c.drain_timeout_ms, 0);
  c.setup_timeout_ms = get_ms(doc, "setup_timeout_ms", c.setup_timeout_ms, 0);
  c.proxy_timeout_ms = get_ms(doc, "proxy_timeout_ms", c.proxy_timeout_ms, 1);
  c.proxy_header_timeout_ms = get_ms(doc, "proxy_header_timeout_ms", c.proxy_header_timeout_ms, 1);
  const long long per_ip = get_int(doc, "proxy_max_conns_per_ip", c.proxy_max_conns_per_ip);
  if (per_ip < 0 || per_ip > 10000)
    throw ConfigError(fmt::format(
        "config: \"proxy_max_conns_per_ip\" must be 0-10000 (0 = no limit), got {}", per_ip));
  c.proxy_max_conns_per_ip = static_cast<int>(per_ip);
  if (doc.contains("proxy_workers")) {
    const long long workers = get_int(doc, "proxy_workers", 1);
    if (workers < 1 || workers > 64)
      throw ConfigError(fmt::format(
          "config: \"proxy_workers\" must be 1-64 (the proxy's event loops; leave it out for one per CPU), got {}",
          workers));
    c.proxy_workers = static_cast<int>(workers);
  }
  c.log_max_bytes = get_int(doc, "log_max_bytes", c.log_max_bytes);
  if (c.log_max_bytes < 4096 || c.log_max_bytes > (1ll << 40))
    throw ConfigError(fmt::format("config: \"log_max_bytes\" must be 4096-1099511627776, got {}",
                                  c.log_max_bytes));
  c.max_request_body = get_int(doc, "max_request_body", c.max_request_body);
  if (c.max_request_body < 0 || c.max_request_body > (1ll << 50))
    throw ConfigError(fmt::format("config: \"max_request_body\" must be 0 (no limit) or a size in bytes up to "
                                  "1125899906842624 (1 PiB), got {}",
                                  c.max_request_body));
  const long long keep = get_int(doc, "log_keep", c.log_keep);
  if (keep < 0 || keep > 100)
    throw ConfigError(fmt::format("config: \"log_keep\" must be 0-100, got {}", keep));
  c.log_keep = static_cast<int>(keep);
  c.api_port = get_port(doc, "api_port", c.api_port);
  c.api_bind = get_string(doc, "api_bind", c.api_bind);
  if (doc.contains("tls")) {
    get_tls(doc, base_dir, c, role == Role::Server);
    for (const auto& [name, p] : {std::pair{"port", c.port}, {"internal_port", c.internal_port}, {"api_port", c.api_port}})
      if (c.tls_port == p)
        throw ConfigError(fmt::format("config: \"tls.port\" {} is also \"{}\"; HTTPS needs a port of its own",
                                      c.tls_port, name));
  }
  if (c.api_bind.empty()) throw ConfigError("config: \"api_bind\" must not be empty");

  const std::string restart = get_string(doc, "restart", "never");
  if (restart != "never" && restart != "on-failure")
    throw ConfigError(fmt::format(
        "config: \"restart\" must be \"never\" or \"on-failure\", got \"{}\"", restart));
  c.restart_on_failure = restart == "on-failure";
  c.api_token_file = get_path(doc, "api_token_file", base_dir);
  get_api_tls(doc, base_dir, c);
  c.shared_dirs = get_shared_dirs(doc);
  c.compress = get_compress(doc, c.compress);
  get_standby(doc, c, out.warnings);
  if (doc.contains("webhooks")) c.webhooks = parse_webhooks(doc.at("webhooks"), base_dir);
  if (doc.contains("notify")) c.notify = parse_notify(doc.at("notify"), base_dir);
  if (doc.contains("github")) c.github = parse_github(doc.at("github"), base_dir);
  if (doc.contains("workers")) c.workers = parse_workers(doc.at("workers"));
  if (doc.contains("cron")) c.cron = parse_cron(doc.at("cron"));

  std::string env_file = get_string(doc, "env_file", "");
  if (!env_file.empty()) {
    std::filesystem::path p(env_file);
    c.env_file = p.is_absolute() ? p : (base_dir / p).lexically_normal();
  }
  return out;
}

}  // namespace

bool is_server_config(const std::string& text) {
  const json doc = json::parse(text, nullptr, false);
  return doc.is_object() && doc.contains("apps");
}

ServerConfig parse_server(const std::string& text, const std::filesystem::path& base_dir) {
  json doc = parse_json(text);
  if (!doc.is_object()) throw ConfigError(fmt::format("config: must be a JSON object, got {}", doc.type_name()));
  if (!doc.contains("apps")) throw ConfigError("config: a server config needs \"apps\"");
  std::vector<std::string> known(kServerKeys.begin(), kServerKeys.end());
  known.push_back("apps");
  json server = json::object();
  for (const auto& [key, value] : doc.items()) {
    if (key == "apps") continue;
    if (std::find(kServerKeys.begin(), kServerKeys.end(), key) != kServerKeys.end()) {
      server[key] = value;
      continue;
    }
    const json one{{key, nullptr}};
    if (unknown_keys(one).empty())  // an app's field, one level too high
      throw ConfigError(fmt::format("config: \"{}\" is an app's field: with \"apps\" it belongs in each app's own "
                                    "config (\"config\" of the app, default <repo>/slot-machine.json)",
                                    key));
    throw ConfigError(fmt::format("config: {}", unknown_keys(one, known).front()));
  }
  ServerConfig out;
  Loaded fields = parse_fields(server, base_dir, Role::Server);
  out.server = std::move(fields.config);
  out.warnings = std::move(fields.warnings);
  out.apps = parse_apps(doc.at("apps"), base_dir);
  return out;
}

Loaded parse_app_file(const std::string& text, const std::filesystem::path& base_dir) {
  json doc = parse_json(text);
  if (!doc.is_object()) throw ConfigError(fmt::format("config: must be a JSON object, got {}", doc.type_name()));
  if (doc.contains("apps"))
    throw ConfigError("config: an app's own config cannot hold \"apps\" (only the server's config does)");
  std::vector<std::string> ignored;
  for (const auto& key : kServerKeys)
    if (doc.contains(key)) {
      ignored.push_back("\"" + key + "\"");
      doc.erase(key);
    }
  Loaded out = parse_known(doc, base_dir, Role::App);
  if (!ignored.empty())
    out.warnings.insert(out.warnings.begin(),
                        fmt::format("config: {} ignored: the server's config sets {}", fmt::join(ignored, ", "),
                                    ignored.size() == 1 ? "it" : "them"));
  return out;
}

Loaded load(const std::filesystem::path& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  if (ec) abs = path;
  return parse(read_file(abs), abs.parent_path());
}

ClientSettings client_settings(const std::filesystem::path& path) {
  ClientSettings out;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return out;
  json doc;
  try {
    doc = json::parse(read_file(path));
  } catch (const json::exception& e) {  // without it there is no api_port to read
    throw ConfigError(fmt::format("config: {} is not valid JSON: {}; fix it, or pass --api-port N",
                                  path.string(), json_error_text(e)));
  }
  if (!doc.is_object()) return out;
  const auto base = std::filesystem::absolute(path, ec).parent_path();
  out.api_port = get_port(doc, "api_port", 9100);
  try {
    out.api_token_file = get_path(doc, "api_token_file", base);
    Config c;
    get_api_tls(doc, base, c);
    out.api_tls_cert = c.api_tls_cert;
  } catch (const ConfigError&) {
  }  // the daemon refuses such a config with the message
  return out;
}

}  // namespace sm::config
