// The config of deploy triggers and notifications (contract §9): "webhooks", "notify",
// "github".
#include <algorithm>
#include <set>
#include <string_view>

#include "config/config.h"
#include "config/fields.h"

namespace sm::config {
using namespace fields;

namespace {

/// Throws unless `name` could be a git branch: no whitespace, control characters,
/// "..", "~^:?*[\\", leading '-' or '/', trailing '/' or ".lock".
void check_branch(const std::string& name, const std::string& field) {
  const bool bad = name.empty() || name.front() == '-' || name.front() == '/' || name.back() == '/' ||
                   name.ends_with(".lock") || name.find("..") != std::string::npos ||
                   name.find("//") != std::string::npos || name.find("@{") != std::string::npos ||
                   std::any_of(name.begin(), name.end(), [](unsigned char ch) {
                     return ch <= ' ' || ch == 0x7f || std::string_view("~^:?*[\\").find(ch) != std::string_view::npos;
                   });
  if (bad)
    throw ConfigError(fmt::format("config: \"{}\" must be a branch name like \"main\", got {}", field,
                                  log::json_text(name)));
}

}  // namespace

Config::Webhooks parse_webhooks(const json& w, const std::filesystem::path& base_dir) {
  if (!w.is_object())
    throw ConfigError(fmt::format("config: \"webhooks\" must be an object with \"secret_file\", got {}", type_name(w)));
  static const std::set<std::string> kKeys = {"secret_file", "branch", "remote", "path", "token_file"};
  for (const auto& [key, _] : w.items())
    if (!kKeys.count(key))
      throw ConfigError(fmt::format("config: \"webhooks\" does not take \"{}\" (it takes secret_file, branch, "
                                    "remote, path, token_file)",
                                    key));
  Config::Webhooks out;
  out.secret_file = get_path(w, "secret_file", base_dir, "webhooks");
  if (out.secret_file.empty())
    throw ConfigError("config: \"webhooks.secret_file\" is required: the file holding the secret the forge signs "
                      "deliveries with (`openssl rand -hex 32 > webhook.secret`)");
  out.branch = get_string(w, "branch", out.branch, "webhooks");
  check_branch(out.branch, "webhooks.branch");
  out.remote = get_string(w, "remote", out.remote, "webhooks");
  if (out.remote.empty() || out.remote.front() == '-' ||
      out.remote.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") !=
          std::string::npos)
    throw ConfigError(fmt::format("config: \"webhooks.remote\" must name a git remote like \"origin\", got {}",
                                  log::json_text(out.remote)));
  out.path = get_string(w, "path", out.path, "webhooks");
  while (out.path.size() > 1 && out.path.back() == '/') out.path.pop_back();
  if (out.path.size() < 2 || out.path.front() != '/' ||
      out.path.find_first_of("?#% \t\r\n") != std::string::npos || out.path.find("//") != std::string::npos)
    throw ConfigError(fmt::format("config: \"webhooks.path\" must be a path below \"/\" like \"/.slot-machine/hooks\" "
                                  "(no query, '%' or spaces), got {}",
                                  log::json_text(w.value("path", ""))));
  out.token_file = get_path(w, "token_file", base_dir, "webhooks");
  return out;
}

std::vector<Config::NotifyTarget> parse_notify(const json& n, const std::filesystem::path& base_dir) {
  if (!n.is_array())
    throw ConfigError(fmt::format("config: \"notify\" must be an array of targets like [{{\"url\": "
                                  "\"https://example.com/hook\"}}], got {}",
                                  type_name(n)));
  if (n.size() > 20) throw ConfigError("config: \"notify\" has more than 20 targets");
  static const std::set<std::string> kKeys = {"url", "events", "secret_file", "format"};
  std::vector<Config::NotifyTarget> out;
  for (size_t i = 0; i < n.size(); ++i) {
    const json& t = n[i];
    const std::string where = fmt::format("notify[{}]", i);
    if (!t.is_object())
      throw ConfigError(fmt::format("config: \"{}\" must be an object with \"url\", got {}", where, type_name(t)));
    for (const auto& [key, _] : t.items())
      if (!kKeys.count(key))
        throw ConfigError(fmt::format("config: \"{}\" does not take \"{}\" (it takes url, events, secret_file, "
                                      "format)",
                                      where, key));
    Config::NotifyTarget target;
    target.url = get_string(t, "url", "", where);
    const bool http = target.url.starts_with("http://"), https = target.url.starts_with("https://");
    const size_t host_at = http ? 7 : 8;
    if ((!http && !https) || target.url.size() <= host_at || target.url[host_at] == '/' ||
        target.url.find_first_of(" \t\r\n\"<>\\") != std::string::npos)
      throw ConfigError(fmt::format("config: \"{}.url\" must be an http:// or https:// URL, got {}", where,
                                    log::json_text(target.url)));
    if (t.contains("events")) {
      const json& ev = t.at("events");
      if (!ev.is_array() || ev.empty())
        throw ConfigError(fmt::format("config: \"{}.events\" must be a non-empty array of event names", where));
      for (const json& e : ev) {
        if (!e.is_string() || std::find(kNotifyEvents.begin(), kNotifyEvents.end(), e.get<std::string>()) ==
                                  kNotifyEvents.end())
          throw ConfigError(fmt::format("config: \"{}.events\": {} is not an event; use any of {}", where,
                                        log::json_text(e), fmt::join(kNotifyEvents, ", ")));
        target.events.push_back(e.get<std::string>());
      }
    }
    target.secret_file = get_path(t, "secret_file", base_dir, where);
    target.format = get_string(t, "format", target.format, where);
    if (target.format != "json" && target.format != "slack")
      throw ConfigError(fmt::format("config: \"{}.format\" must be \"json\" or \"slack\", got {}", where,
                                    log::json_text(target.format)));
    out.push_back(std::move(target));
  }
  return out;
}

Config::GitHub parse_github(const json& g, const std::filesystem::path& base_dir) {
  if (!g.is_object())
    throw ConfigError(fmt::format("config: \"github\" must be an object with \"repo\" and \"token_file\", got {}",
                                  type_name(g)));
  static const std::set<std::string> kKeys = {"repo", "token_file", "api_url", "environment"};
  for (const auto& [key, _] : g.items())
    if (!kKeys.count(key))
      throw ConfigError(fmt::format("config: \"github\" does not take \"{}\" (it takes repo, token_file, api_url, "
                                    "environment)",
                                    key));
  Config::GitHub out;
  out.repo = get_string(g, "repo", "", "github");
  const auto slash = out.repo.find('/');
  const auto name_ok = [](std::string_view s) {
    return !s.empty() && s != "." && s != ".." &&
           s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
               std::string_view::npos;
  };
  if (slash == std::string::npos || !name_ok(std::string_view(out.repo).substr(0, slash)) ||
      !name_ok(std::string_view(out.repo).substr(slash + 1)))
    throw ConfigError(fmt::format("config: \"github.repo\" must be \"owner/name\", got {}", log::json_text(out.repo)));
  out.token_file = get_path(g, "token_file", base_dir, "github");
  if (out.token_file.empty())
    throw ConfigError("config: \"github.token_file\" is required: a file holding a token that may create "
                      "deployments in github.repo");
  out.api_url = get_string(g, "api_url", out.api_url, "github");
  while (out.api_url.size() > 8 && out.api_url.back() == '/') out.api_url.pop_back();
  if ((!out.api_url.starts_with("https://") && !out.api_url.starts_with("http://")) ||
      out.api_url.find_first_of(" \t\r\n\"<>\\?#") != std::string::npos || out.api_url.size() <= 8)
    throw ConfigError(fmt::format("config: \"github.api_url\" must be an http(s):// URL like "
                                  "\"https://api.github.com\", got {}",
                                  log::json_text(out.api_url)));
  out.environment = get_string(g, "environment", out.environment, "github");
  if (out.environment.empty() || out.environment.size() > 255 ||
      std::any_of(out.environment.begin(), out.environment.end(), [](unsigned char ch) { return ch < ' '; }))
    throw ConfigError(fmt::format("config: \"github.environment\" must be a name like \"production\", got {}",
                                  log::json_text(out.environment)));
  return out;
}

}  // namespace sm::config
