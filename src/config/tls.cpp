// The HTTPS fields of the config: "tls" (the public side, a certificate or ACME) and
// "api_tls" (the API's own). Split from config.cpp.
#include <fmt/format.h>

#include <cctype>
#include <set>
#include <tuple>

#include "config/config.h"
#include "config/fields.h"

namespace sm::config::fields {
namespace {

/// Why `name` is not a DNS name an HTTP-01 challenge can prove (letters, digits and
/// hyphens in dot-separated labels of 1-63 characters, at most 253 in all, not an IP
/// address, no wildcard), or "".
std::string bad_domain(const std::string& name) {
  if (name.empty()) return "it is empty";
  if (name.size() > 253) return "it is longer than 253 characters";
  if (name.find('*') != std::string::npos)
    return "wildcards need a DNS-01 challenge, which slot-machine does not answer; list each name";
  bool all_digits_and_dots = true;
  size_t label = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    const char c = i < name.size() ? name[i] : '.';
    if (c == '.') {
      if (label == 0) return "it has an empty label";
      if (label > 63) return "a label is longer than 63 characters";
      if (name[i - 1] == '-' || name[i - label] == '-') return "a label starts or ends with '-'";
      label = 0;
      continue;
    }
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
      return fmt::format("'{}' is not a letter, digit, '-' or '.'", c);
    if (!std::isdigit(static_cast<unsigned char>(c))) all_digits_and_dots = false;
    ++label;
  }
  if (all_digits_and_dots) return "IP addresses cannot get a certificate over HTTP-01 here; give a DNS name";
  return "";
}

/// The object at `field` ("tls", "api_tls"): checked to hold only `allowed` keys and a
/// non-empty "cert" and "key" path each; returns them resolved against `base_dir`.
std::pair<std::filesystem::path, std::filesystem::path> get_cert_pair(
    const json& t, const std::string& field, const std::set<std::string>& allowed,
    const std::filesystem::path& base_dir) {
  if (!t.is_object())
    throw ConfigError(fmt::format("config: \"{}\" must be an object with \"cert\" and \"key\" paths, got {}",
                                  field, type_name(t)));
  for (const auto& [key, _] : t.items())
    if (!allowed.count(key))
      throw ConfigError(fmt::format("config: \"{}\" does not take \"{}\"", field, key));
  for (const char* key : {"cert", "key"})
    if (!t.contains(key) || !t.at(key).is_string() || t.at(key).get<std::string>().empty())
      throw ConfigError(fmt::format("config: \"{}.{}\" must be the path of a PEM file", field, key));
  return {get_path(t, "cert", base_dir), get_path(t, "key", base_dir)};
}

/// "tls.acme": {"domains": [...], "email": "...", "directory_url": "https://...",
/// "ca_file": PATH}; domains required, the CA defaults to Let's Encrypt. A server config
/// (`server`) takes no domains: each app's certificate names its hosts.
void get_acme(const json& a, const std::filesystem::path& base_dir, Config& c, bool server) {
  if (!a.is_object())
    throw ConfigError(fmt::format("config: \"tls.acme\" must be an object{}, got {}",
                                  server ? "" : " with \"domains\"", type_name(a)));
  for (const auto& [key, _] : a.items())
    if (key != "domains" && key != "email" && key != "directory_url" && key != "ca_file")
      throw ConfigError(fmt::format("config: \"tls.acme\" does not take \"{}\"", key));
  c.acme = true;
  if (server && a.contains("domains"))
    throw ConfigError("config: \"tls.acme.domains\" is not for a server config: each app gets a certificate for its "
                      "own \"hosts\"; remove \"domains\"");
  if (!server && (!a.contains("domains") || !a.at("domains").is_array() || a.at("domains").empty()))
    throw ConfigError("config: \"tls.acme.domains\" must be a non-empty array of DNS names, like [\"example.com\"]");
  for (const json& d : server ? json::array() : a.at("domains")) {
    if (!d.is_string())
      throw ConfigError(fmt::format("config: \"tls.acme.domains\" entries must be strings, got {} ({})",
                                    type_name(d), log::json_text(d)));
    std::string name = d.get<std::string>();
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (const std::string why = bad_domain(name); !why.empty())
      throw ConfigError(fmt::format("config: \"tls.acme.domains\" entry {}: {}", log::json_text(d), why));
    if (std::find(c.acme_domains.begin(), c.acme_domains.end(), name) != c.acme_domains.end())
      throw ConfigError(fmt::format("config: \"tls.acme.domains\" lists \"{}\" twice", name));
    c.acme_domains.push_back(name);
  }
  if (c.acme_domains.size() > 100)
    throw ConfigError("config: \"tls.acme.domains\" names more than 100 domains (one certificate holds 100 at most)");
  c.acme_email = get_string(a, "email", "");
  if (!c.acme_email.empty() && (c.acme_email.find('@') == std::string::npos ||
                                c.acme_email.find_first_of(" \t\r\n,<>") != std::string::npos))
    throw ConfigError(fmt::format("config: \"tls.acme.email\" must be an e-mail address, got \"{}\"", c.acme_email));
  c.acme_directory_url = get_string(a, "directory_url", c.acme_directory_url);
  if (!c.acme_directory_url.starts_with("https://") || c.acme_directory_url.size() <= 8)
    throw ConfigError(fmt::format("config: \"tls.acme.directory_url\" must be an https:// URL (RFC 8555), got \"{}\"",
                                  c.acme_directory_url));
  c.acme_ca_file = get_path(a, "ca_file", base_dir);
  std::error_code ec;
  if (!c.acme_ca_file.empty() && !std::filesystem::is_regular_file(c.acme_ca_file, ec))
    throw ConfigError(fmt::format("config: \"tls.acme.ca_file\": no file at {}", c.acme_ca_file.string()));
}

}  // namespace

/// "tls": {"port": N, "cert": PATH, "key": PATH} or {"port": N, "acme": {...}} (HTTPS
/// on the public side).
void get_tls(const json& doc, const std::filesystem::path& base_dir, Config& c, bool server) {
  if (!doc.contains("tls")) return;
  const json& t = doc.at("tls");
  if (t.is_object() && t.contains("acme")) {
    for (const auto& [key, _] : t.items())
      if (key != "port" && key != "acme")
        throw ConfigError(fmt::format("config: \"tls\" takes \"acme\" or \"cert\"/\"key\", not both (\"{}\")", key));
    get_acme(t.at("acme"), base_dir, c, server);
  } else {
    std::tie(c.tls_cert, c.tls_key) = get_cert_pair(t, "tls", {"port", "cert", "key", "acme"}, base_dir);
  }
  if (t.contains("port") && !t.at("port").is_number_integer())
    throw ConfigError(fmt::format("config: \"tls.port\" must be an integer, got {} ({})",
                                  type_name(t.at("port")), log::json_text(t.at("port"))));
  c.tls_port = static_cast<int>(get_int(t, "port", 443));
  check_port("tls.port", c.tls_port);
}

/// "api_tls": {"cert": PATH, "key": PATH}; both required when present.
void get_api_tls(const json& doc, const std::filesystem::path& base_dir, Config& c) {
  if (!doc.contains("api_tls")) return;
  std::tie(c.api_tls_cert, c.api_tls_key) = get_cert_pair(doc.at("api_tls"), "api_tls", {"cert", "key"}, base_dir);
}

}  // namespace sm::config::fields
