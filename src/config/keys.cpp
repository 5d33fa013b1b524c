#include "config/keys.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <tuple>

namespace sm::config {
namespace {

const std::set<std::string> kKnownKeys = {
    "start_command", "setup_command",    "port",      "internal_port", "health_endpoint",
    "health_timeout_ms", "drain_timeout_ms", "setup_timeout_ms", "env_file", "api_port",      "api_bind",
    "proxy_timeout_ms", "proxy_header_timeout_ms", "proxy_max_conns_per_ip", "proxy_workers", "log_max_bytes",
    "log_keep", "api_token_file", "api_tls", "tls", "restart", "shared_dirs", "standby", "standby_ttl_s",
    "auto_rollback_s", "webhooks", "notify", "github", "workers", "cron", "max_request_body",
    "compress"};

/// Edit distance between `a` and `b` (short strings: config keys), a swap of two
/// neighbouring letters counting as one edit ("prot" is one from "port").
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

/// `unknown key "start_comand" (did you mean "start_command"?)` for each key the config
/// does not know, the nearest known key named when it is a likely typo.
}  // namespace

std::vector<std::string> unknown_keys(const nlohmann::json& doc) {
  return unknown_keys(doc, std::vector<std::string>(kKnownKeys.begin(), kKnownKeys.end()));
}

std::vector<std::string> unknown_keys(const nlohmann::json& doc, const std::vector<std::string>& known_keys) {
  std::vector<std::string> out;
  for (const auto& [key, _] : doc.items()) {
    if (std::find(known_keys.begin(), known_keys.end(), key) != known_keys.end()) continue;
    std::string best;
    size_t best_distance = 0;
    for (const auto& known : known_keys) {
      const size_t d = edit_distance(key, known);
      if (best.empty() || d < best_distance) std::tie(best, best_distance) = std::tie(known, d);
    }
    // A typo: a few letters off, not a different word.
    const bool close = best_distance <= std::max<size_t>(2, key.size() / 4);
    out.push_back(close ? fmt::format("unknown key \"{}\" (did you mean \"{}\"?)", key, best)
                        : fmt::format("unknown key \"{}\"", key));
  }
  return out;
}

}  // namespace sm::config
