#include "config/env_file.h"

#include <doctest/doctest.h>

#include "config/config.h"

using sm::config::parse_env;

TEST_CASE("env file: comments, blanks, export and quotes") {
  auto vars = parse_env(
      "# a comment\n"
      "\n"
      "PLAIN=value\n"
      "export EXPORTED=yes\n"
      "SINGLE='it is $HOME literally'\n"
      "DOUBLE=\"line1\\nline2 \\\"q\\\"\"\n"
      "SPACED = padded value   \n"
      "INLINE=abc # trailing comment\n"
      "EMPTY=\n"
      "URL=http://x/#frag\n"
      "QUOTED_HASH=\"a # b\" # comment\n",
      "test.env");
  REQUIRE(vars.size() == 9);
  CHECK(vars[0] == std::pair<std::string, std::string>{"PLAIN", "value"});
  CHECK(vars[1] == std::pair<std::string, std::string>{"EXPORTED", "yes"});
  CHECK(vars[2].second == "it is $HOME literally");
  CHECK(vars[3].second == "line1\nline2 \"q\"");
  CHECK(vars[4] == std::pair<std::string, std::string>{"SPACED", "padded value"});
  CHECK(vars[5].second == "abc");
  CHECK(vars[6].second.empty());
  CHECK(vars[7].second == "http://x/#frag");
  CHECK(vars[8].second == "a # b");
}

TEST_CASE("env file: malformed lines name the file and line") {
  auto err = [](const std::string& text) {
    try {
      parse_env(text, "x.env");
    } catch (const sm::config::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(err("OK=1\nno equals here\n") == "env_file x.env: line 2: expected KEY=VALUE");
  CHECK(err("1BAD=x\n").find("not a valid variable name") != std::string::npos);
  CHECK(err("A=\"open\n").find("unterminated double quote") != std::string::npos);
}
