#include "config/apps.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>
#include <sstream>

#include "config/config.h"
#include "config/keys.h"
#include "hosts/table.h"

namespace sm::config {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::vector<std::string> kAppKeys = {"repo", "hosts", "config", "strip_prefix", "canonical_host", "user",
                                           "group"};

fs::path absolute_in(const fs::path& base_dir, const std::string& p) {
  const fs::path path(p);
  return (path.is_absolute() ? path : base_dir / path).lexically_normal();
}

AppEntry parse_app(const std::string& name, const json& j, const fs::path& base_dir) {
  const auto bad = [&](const std::string& why) {
    return ConfigError(fmt::format("config: app \"{}\": {}", name, why));
  };
  if (!j.is_object()) throw bad("must be an object such as {\"repo\": \"/srv/blog\", \"hosts\": [\"blog.example.com\"]}");
  if (const auto unknown = unknown_keys(j, kAppKeys); !unknown.empty()) throw bad(unknown.front());
  AppEntry a;
  a.name = name;
  if (!j.contains("repo") || !j["repo"].is_string() || j["repo"].get<std::string>().empty())
    throw bad("\"repo\" is required: the path of the app's git repository");
  a.repo = absolute_in(base_dir, j["repo"].get<std::string>());
  if (!j.contains("hosts") || !j["hosts"].is_array() || j["hosts"].empty())
    throw bad("\"hosts\" is required: a non-empty list such as [\"blog.example.com\", \"*.blog.example.com\"]");
  for (const json& h : j["hosts"]) {
    if (!h.is_string()) throw bad("\"hosts\" entries must be strings");
    try {
      a.hosts.push_back(hosts::parse_pattern(h.get<std::string>()));
    } catch (const hosts::BadPattern& e) {
      throw bad(fmt::format("\"hosts\": {}", e.what()));
    }
  }
  if (j.contains("config")) {
    if (!j["config"].is_string() || j["config"].get<std::string>().empty())
      throw bad("\"config\" must be the path of the app's slot-machine.json");
    a.config = absolute_in(base_dir, j["config"].get<std::string>());
  } else {
    a.config = a.repo / "slot-machine.json";
  }
  if (j.contains("strip_prefix")) {
    if (!j["strip_prefix"].is_boolean()) throw bad("\"strip_prefix\" must be true or false");
    a.strip_prefix = j["strip_prefix"].get<bool>();
  }
  if (j.contains("canonical_host")) {
    if (!j["canonical_host"].is_string()) throw bad("\"canonical_host\" must be one of the app's hosts");
    std::string c = j["canonical_host"].get<std::string>();
    hosts::Pattern p;
    try {
      p = hosts::parse_pattern(c);
    } catch (const hosts::BadPattern& e) {
      throw bad(fmt::format("\"canonical_host\": {}", e.what()));
    }
    const bool listed = std::find(a.hosts.begin(), a.hosts.end(), p) != a.hosts.end();
    if (p.wildcard() || !p.prefix.empty() || !listed)
      throw bad(fmt::format("\"canonical_host\" \"{}\" must be one of the app's \"hosts\" without a wildcard or a "
                            "path",
                            c));
    a.canonical_host = p.host;
  }
  for (const char* key : {"user", "group"}) {
    if (!j.contains(key)) continue;
    const json& v = j[key];
    // A system user or group name (useradd's rule, loosely): checked against the system
    // when the app is set up.
    if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().size() > 32 ||
        v.get<std::string>().find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
            std::string::npos || v.get<std::string>()[0] == '-')
      throw bad(fmt::format("\"{}\" must be a system {} name such as \"blog\", got {}", key, key, v.dump()));
    (std::string(key) == "user" ? a.user : a.group) = v.get<std::string>();
  }
  if (!a.group.empty() && a.user.empty()) throw bad("\"group\" needs \"user\" (the user the app runs as)");
  return a;
}

}  // namespace

bool valid_app_name(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  const auto ok = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!first && c == '-');
  };
  for (size_t i = 0; i < name.size(); ++i)
    if (!ok(name[i], i == 0)) return false;
  return true;
}

std::vector<AppEntry> parse_apps(const json& apps, const fs::path& base_dir) {
  if (!apps.is_object() || apps.empty())
    throw ConfigError("config: \"apps\" must be an object of apps by name, such as "
                      "{\"blog\": {\"repo\": \"/srv/blog\", \"hosts\": [\"blog.example.com\"]}}");
  if (apps.size() > kMaxApps)
    throw ConfigError(fmt::format("config: \"apps\" holds {} apps; one server takes at most {}", apps.size(), kMaxApps));
  std::vector<AppEntry> out;
  std::vector<hosts::Table::App> routes;
  for (const auto& [name, entry] : apps.items()) {
    if (!valid_app_name(name))
      throw ConfigError(fmt::format("config: app name \"{}\" must be 1-32 of a-z, 0-9 and '-', starting with a "
                                    "letter or digit",
                                    name.substr(0, 100)));
    out.push_back(parse_app(name, entry, base_dir));
    routes.push_back({name, out.back().hosts});
  }
  try {
    hosts::Table check(routes);
  } catch (const hosts::BadPattern& e) {
    throw ConfigError(fmt::format("config: \"apps\": {}", e.what()));
  }
  return out;
}

namespace {

/// The text of `path`, or nullopt when it cannot be read.
std::optional<std::string> read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

ServerConfig load_server(const fs::path& path) {
  const fs::path abs = fs::absolute(path).lexically_normal();
  const auto text = read_text(abs);
  if (!text) throw ConfigError(fmt::format("config: cannot read {}; pass --config PATH", abs.string()));
  return parse_server(*text, abs.parent_path());
}

Loaded load_app_file(const AppEntry& app, const Config& server) {
  const auto text = read_text(app.config);
  if (!text)
    throw ConfigError(fmt::format("cannot read {}: write it (`slot-machine init` in {} writes one) or set the "
                                  "app's \"config\" to its path",
                                  app.config.string(), app.repo.string()));
  Loaded out;
  try {
    out = parse_app_file(*text, app.config.parent_path());
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{} (in {})", e.what(), app.config.string()));
  }
  Config& c = out.config;
  c.port = server.port;
  c.internal_port = server.port;
  c.api_port = server.api_port;
  c.api_bind = server.api_bind;
  c.api_token_file = server.api_token_file;
  c.api_tls_cert = server.api_tls_cert;
  c.api_tls_key = server.api_tls_key;
  c.proxy_timeout_ms = server.proxy_timeout_ms;
  c.proxy_header_timeout_ms = server.proxy_header_timeout_ms;
  c.proxy_max_conns_per_ip = server.proxy_max_conns_per_ip;
  c.proxy_workers = server.proxy_workers;
  c.tls_port = server.tls_port;
  c.tls_cert = server.tls_cert;
  c.tls_key = server.tls_key;
  c.acme = server.acme;  // each app's certificate names its own hosts
  c.acme_domains.clear();
  c.acme_email = server.acme_email;
  c.acme_directory_url = server.acme_directory_url;
  c.acme_ca_file = server.acme_ca_file;
  c.notify = server.notify;  // every app tells the server's targets, naming itself
  return out;
}

}  // namespace sm::config
