#pragma once
// Reading one field of slot-machine.json with a field-named ConfigError: shared by the
// parts of the config parser (config.cpp, triggers.cpp).

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "config/config.h"
#include "log/json_text.h"

namespace sm::config::fields {
using nlohmann::json;

inline const char* type_name(const json& v) {
  return v.is_number_integer() ? "an integer" : v.type_name();
}

/// The field's name in messages: "key", or "parent.key" for a field of an object.
inline std::string field_name(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

inline std::string get_string(const json& doc, const std::string& key, std::string fallback,
                              const std::string& parent = "") {
  if (!doc.contains(key)) return fallback;
  const json& v = doc.at(key);
  if (!v.is_string())
    throw ConfigError(fmt::format("config: \"{}\" must be a string, got {} ({})", field_name(parent, key),
                                  type_name(v), log::json_text(v)));
  return v.get<std::string>();
}

inline long long get_int(const json& doc, const std::string& key, long long fallback,
                         const std::string& parent = "") {
  if (!doc.contains(key)) return fallback;
  const json& v = doc.at(key);
  if (!v.is_number_integer())
    throw ConfigError(fmt::format("config: \"{}\" must be an integer, got {} ({})", field_name(parent, key),
                                  type_name(v), log::json_text(v)));
  return v.get<long long>();
}

/// A path field: relative paths are taken from the config file's directory.
inline std::filesystem::path get_path(const json& doc, const std::string& key,
                                      const std::filesystem::path& base_dir, const std::string& parent = "") {
  const std::string v = get_string(doc, key, "", parent);
  if (v.empty()) return {};
  std::filesystem::path p(v);
  return p.is_absolute() ? p : (base_dir / p).lexically_normal();
}

/// "tls": {"port", "cert", "key"} or {"port", "acme": {...}} into `c` (tls.cpp); a server
/// config's ACME takes no domains.
void get_tls(const json& doc, const std::filesystem::path& base_dir, Config& c, bool server);
/// "api_tls": {"cert", "key"} into `c` (tls.cpp).
void get_api_tls(const json& doc, const std::filesystem::path& base_dir, Config& c);

}  // namespace sm::config::fields
