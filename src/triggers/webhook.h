#pragma once
// Webhook deliveries (contract §9): which forge sent one, whether its signature holds,
// and what it asks for. Pure functions of the request; no I/O.

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace sm::triggers {

/// The forges a webhook path serves: <path>/github, /gitlab, /gitea (Forgejo too), /generic.
enum class Forge { GitHub, GitLab, Gitea, Generic };

/// The forge a path suffix names ("github" ...), or nullopt.
std::optional<Forge> forge_named(std::string_view name);
const char* name_of(Forge forge);

/// Lower-case hex HMAC-SHA256 of `data` with `key` (OpenSSL).
std::string hmac_sha256_hex(const std::string& key, const std::string& data);

/// A push to deploy: the commit the branch now names, and the delivery's id ("" when
/// the forge sent none).
struct Push {
  std::string commit, delivery;
};

/// What a delivery comes to. status 401 (bad or missing signature), 400 (a push that
/// names no commit, a body that is not JSON), 200 with `ignored` (ping, other events,
/// other branches, a branch deleted), or 202-to-be with `push` (the queue decides).
struct Reading {
  int status = 200;
  std::string error;    // 4xx: what was wrong
  std::string ignored;  // 200: why nothing happens
  std::optional<Push> push;
};

/// Checks a delivery from `forge` (headers with lower-case names) against `secret` and
/// reads it: the signature first, so an unsigned body is never parsed.
Reading read_delivery(Forge forge, const std::map<std::string, std::string>& headers, const std::string& body,
                      const std::string& secret, const std::string& branch);

}  // namespace sm::triggers
