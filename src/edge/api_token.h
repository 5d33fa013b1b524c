#pragma once
// The API token (contract §8): where the daemon and the clients find it, what a usable
// one looks like, and comparing a presented one in constant time.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace sm::edge {

/// The environment variable that carries the token (beats `api_token_file`).
inline constexpr const char* kTokenVar = "SLOT_MACHINE_API_TOKEN";

/// The token in `file` (its first line, surrounding whitespace trimmed). Throws
/// config::ConfigError naming the file when it cannot be read or the token is unusable.
std::string read_token_file(const std::filesystem::path& file);

/// The secret in `file` (its first line, trimmed), for config field `field` ("api_token_file",
/// "webhooks.secret_file" ...): 16-4096 visible ASCII characters. Throws config::ConfigError
/// naming the field and the file, with `how_to_create` as the remedy; logs a warning naming
/// `what` when other users can read the file.
std::string read_secret_file(const std::filesystem::path& file, const std::string& field, const std::string& what,
                             const std::string& how_to_create);

/// Throws config::ConfigError unless `token` is 16-4096 visible ASCII characters (it
/// travels in an Authorization header); `where` names its source in the message.
void check_token(const std::string& token, const std::string& where, const std::string& what = "the API token");

/// The token to use: $SLOT_MACHINE_API_TOKEN when set and not empty, else `file`'s when
/// one is configured, else none. Throws config::ConfigError (see above).
std::optional<std::string> find_token(const std::filesystem::path& file);

/// Whether `header` (an Authorization value) is "Bearer <expected>", compared in
/// constant time (SHA-256 of both, then CRYPTO_memcmp: the length does not leak either).
bool bearer_matches(std::string_view header, const std::string& expected);

/// Whether `a` and `b` are equal, in a time that does not depend on where they differ
/// (secrets of a known length: signatures, CSRF tokens).
bool equal_constant_time(std::string_view a, std::string_view b);

/// Whether `bind` is a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback(const std::string& bind);

}  // namespace sm::edge
