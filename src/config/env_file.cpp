#include "config/env_file.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "config/config.h"

namespace sm::config {
namespace {

bool valid_key(const std::string& k) {
  if (k.empty() || std::isdigit(static_cast<unsigned char>(k[0]))) return false;
  for (char ch : k)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') return false;
  return true;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

EnvVars parse_env(const std::string& text, const std::string& source) {
  EnvVars out;
  std::istringstream in(text);
  std::string raw;
  int lineno = 0;
  auto fail = [&](const std::string& why) {
    throw ConfigError(fmt::format("env_file {}: line {}: {}", source, lineno, why));
  };
  while (std::getline(in, raw)) {
    ++lineno;
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("export ", 0) == 0) line = trim(line.substr(7));
    auto eq = line.find('=');
    if (eq == std::string::npos) fail("expected KEY=VALUE");
    std::string key = trim(line.substr(0, eq));
    if (!valid_key(key)) fail(fmt::format("\"{}\" is not a valid variable name", key));
    std::string rest = trim(line.substr(eq + 1));
    std::string value;
    if (!rest.empty() && (rest[0] == '\'' || rest[0] == '"')) {
      char q = rest[0];
      size_t i = 1;
      bool closed = false;
      for (; i < rest.size(); ++i) {
        char ch = rest[i];
        if (ch == q) { closed = true; break; }
        if (q == '"' && ch == '\\' && i + 1 < rest.size()) {
          char n = rest[++i];
          switch (n) {
            case 'n': value += '\n'; break;
            case 't': value += '\t'; break;
            case 'r': value += '\r'; break;
            default: value += n;  // \" \\ \$ and anything else: the character itself
          }
          continue;
        }
        value += ch;
      }
      if (!closed) fail(fmt::format("unterminated {} quote", q == '"' ? "double" : "single"));
      std::string after = trim(rest.substr(i + 1));
      if (!after.empty() && after[0] != '#') fail("unexpected text after the closing quote");
    } else {
      auto hash = rest.find(" #");
      if (hash == std::string::npos) hash = rest.find("\t#");
      value = trim(hash == std::string::npos ? rest : rest.substr(0, hash));
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

EnvVars load_env_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ConfigError(fmt::format(
        "config: \"env_file\" {} cannot be read; create it or remove env_file from the config",
        path.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_env(ss.str(), path.string());
}

}  // namespace sm::config
