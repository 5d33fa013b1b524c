#include "triggers/webhook.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "edge/api_token.h"

namespace sm::triggers {
using nlohmann::json;

namespace {

std::string header(const std::map<std::string, std::string>& h, const char* name) {
  auto it = h.find(name);
  return it == h.end() ? "" : it->second;
}

/// The first of `names` present, or "".
std::string first_header(const std::map<std::string, std::string>& h, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (auto v = header(h, n); !v.empty()) return v;
  return "";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// Whether `sent` is the hex HMAC of `body` (after `prefix`, such as "sha256=").
bool signed_by(const std::string& sent, const std::string& prefix, const std::string& body, const std::string& secret) {
  if (!sent.starts_with(prefix)) return false;
  return edge::equal_constant_time(lower(sent.substr(prefix.size())), hmac_sha256_hex(secret, body));
}

Reading refuse(int status, std::string error) {
  Reading r;
  r.status = status;
  r.error = std::move(error);
  return r;
}

Reading ignore(std::string why) {
  Reading r;
  r.ignored = std::move(why);
  return r;
}

/// Whether `forge`'s event header names a push; what it names otherwise.
std::pair<bool, std::string> event_of(Forge forge, const std::map<std::string, std::string>& h) {
  switch (forge) {
    case Forge::GitHub: {
      const std::string e = header(h, "x-github-event");
      return {e == "push", e};
    }
    case Forge::GitLab: {
      const std::string e = header(h, "x-gitlab-event");
      return {e == "Push Hook", e};
    }
    case Forge::Gitea: {
      const std::string e = first_header(h, {"x-gitea-event", "x-forgejo-event", "x-gogs-event"});
      return {e == "push", e};
    }
    case Forge::Generic: {
      const std::string e = header(h, "x-slot-machine-event");
      return {e.empty() || e == "push", e};
    }
  }
  return {false, ""};
}

}  // namespace

std::optional<Forge> forge_named(std::string_view name) {
  if (name == "github") return Forge::GitHub;
  if (name == "gitlab") return Forge::GitLab;
  if (name == "gitea") return Forge::Gitea;
  if (name == "generic") return Forge::Generic;
  return std::nullopt;
}

const char* name_of(Forge forge) {
  switch (forge) {
    case Forge::GitHub: return "github";
    case Forge::GitLab: return "gitlab";
    case Forge::Gitea: return "gitea";
    case Forge::Generic: return "generic";
  }
  return "?";
}

std::string hmac_sha256_hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  std::string hex;
  hex.reserve(2 * len);
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", mac[i]);
  return hex;
}

Reading read_delivery(Forge forge, const std::map<std::string, std::string>& h, const std::string& body,
                      const std::string& secret, const std::string& branch) {
  bool ok = false;
  std::string missing;
  switch (forge) {
    case Forge::GitHub:
      ok = signed_by(header(h, "x-hub-signature-256"), "sha256=", body, secret);
      missing = "X-Hub-Signature-256";
      break;
    case Forge::GitLab:
      ok = edge::equal_constant_time(header(h, "x-gitlab-token"), secret);
      missing = "X-Gitlab-Token";
      break;
    case Forge::Gitea:
      ok = signed_by(first_header(h, {"x-gitea-signature", "x-forgejo-signature", "x-gogs-signature"}), "", body,
                     secret);
      missing = "X-Gitea-Signature";
      break;
    case Forge::Generic:
      ok = signed_by(header(h, "x-slot-machine-signature"), "sha256=", body, secret);
      missing = "X-Slot-Machine-Signature";
      break;
  }
  if (!ok)
    return refuse(401, fmt::format("the {} header is missing or does not match the secret in webhooks.secret_file",
                                   missing));

  const auto [is_push, event] = event_of(forge, h);
  if (!is_push) return ignore(fmt::format("event \"{}\" is not a push", event));
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return refuse(400, "the body is not a JSON object");
  const json& ref = doc.contains("ref") ? doc["ref"] : json();
  const json& after = doc.contains("after") ? doc["after"] : json();
  if (!ref.is_string() || !after.is_string())
    return refuse(400, "a push must have \"ref\" and \"after\" strings");
  const std::string want = "refs/heads/" + branch;
  if (ref.get<std::string>() != want)
    return ignore(fmt::format("a push to {}, not {}", ref.get<std::string>(), want));
  std::string commit = lower(after.get<std::string>());
  if (commit.size() != 40 || commit.find_first_not_of("0123456789abcdef") != std::string::npos)
    return refuse(400, fmt::format("\"after\" is not a full commit hash: \"{}\"", commit.substr(0, 80)));
  if (commit == std::string(40, '0')) return ignore(fmt::format("{} was deleted", want));
  Reading r;
  r.push = Push{std::move(commit), first_header(h, {"x-github-delivery", "x-gitlab-event-uuid", "idempotency-key",
                                                    "x-gitea-delivery", "x-forgejo-delivery", "x-gogs-delivery",
                                                    "x-slot-machine-delivery"})};
  return r;
}

}  // namespace sm::triggers
