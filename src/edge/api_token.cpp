#include "edge/api_token.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <array>
#include <cstdlib>
#include <fstream>

#include "config/config.h"
#include "log/log.h"

namespace sm::edge {
namespace {

std::array<unsigned char, 32> sha256(std::string_view s) {
  std::array<unsigned char, 32> out{};
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), out.data(), &n, EVP_sha256(), nullptr);
  return out;
}

std::string trimmed(std::string s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

void check_token(const std::string& token, const std::string& where, const std::string& what) {
  if (token.size() < 16 || token.size() > 4096)
    throw config::ConfigError(fmt::format(
        "{} from {} is {} characters; it must be 16-4096 (make one with `openssl rand "
        "-hex 32`)",
        what, where, token.size()));
  for (unsigned char c : token)
    if (c <= 0x20 || c >= 0x7f)
      throw config::ConfigError(fmt::format(
          "{} from {} holds a space, control or non-ASCII character; use visible "
          "ASCII only (make one with `openssl rand -hex 32`)",
          what, where));
}

std::string read_secret_file(const std::filesystem::path& file, const std::string& field, const std::string& what,
                             const std::string& how_to_create) {
  std::ifstream in(file);
  if (!in)
    throw config::ConfigError(fmt::format("config: \"{}\": cannot read {}; {} or remove the field", field,
                                          file.string(), how_to_create));
  std::string first;
  std::getline(in, first);
  const std::string token = trimmed(first);
  check_token(token, fmt::format("\"{}\" {}", field, file.string()), what);
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0 && (st.st_mode & 077))
    log::info("warning: {} ({}) can be read by other users (mode {:o}); chmod 600 it", file.string(), what,
              st.st_mode & 0777);
  return token;
}

std::string read_token_file(const std::filesystem::path& file) {
  return read_secret_file(file, "api_token_file", "the API token",
                          fmt::format("create it (`openssl rand -hex 32 > {}` and chmod 600)", file.string()));
}

std::optional<std::string> find_token(const std::filesystem::path& file) {
  if (const char* v = std::getenv(kTokenVar); v && *v) {
    check_token(v, fmt::format("${}", kTokenVar));
    return std::string(v);
  }
  if (!file.empty()) return read_token_file(file);
  return std::nullopt;
}

bool bearer_matches(std::string_view header, const std::string& expected) {
  constexpr std::string_view kScheme = "Bearer ";
  std::string_view given;
  if (header.size() > kScheme.size() && header.substr(0, kScheme.size()) == kScheme)
    given = header.substr(kScheme.size());
  const auto a = sha256(given), b = sha256(expected);
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0 && !given.empty();
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool is_loopback(const std::string& bind) {
  if (bind == "localhost" || bind == "::1") return true;
  in_addr a{};
  if (inet_pton(AF_INET, bind.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

}  // namespace sm::edge
