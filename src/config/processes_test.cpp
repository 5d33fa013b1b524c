#include <doctest/doctest.h>

#include "config/config.h"

namespace {
std::string refusal(const std::string& fields) {
  try {
    sm::config::parse(R"({"start_command":"x",)" + fields + "}", "/srv/app");
  } catch (const sm::config::ConfigError& e) {
    return e.what();
  }
  return "accepted";
}
}  // namespace

TEST_CASE("config: workers are names to commands; bad names and empty commands are named") {
  const auto c = sm::config::parse(R"({"start_command":"x","workers":{"jobs":"bundle exec sidekiq","mail-2":"./mail"}})",
                                   "/srv/app")
                     .config;
  CHECK(c.workers == std::map<std::string, std::string>{{"jobs", "bundle exec sidekiq"}, {"mail-2", "./mail"}});
  CHECK(sm::config::parse(R"({"start_command":"x"})", "/srv/app").config.workers.empty());
  CHECK(refusal(R"("workers":{"Jobs":"x"})") == "config: worker name \"Jobs\" must be 1-32 of a-z, 0-9 and '-'");
  CHECK(refusal(R"("workers":{"":"x"})") == "config: worker name \"\" must be 1-32 of a-z, 0-9 and '-'");
  CHECK(refusal(R"("workers":{")" + std::string(33, 'a') + R"(":"x"})").find("must be 1-32") != std::string::npos);
  CHECK(refusal(R"("workers":{"jobs":""})") == "config: \"workers.jobs\" must not be empty: give the command to run");
  CHECK(refusal(R"("workers":{"jobs":"  "})") == "config: \"workers.jobs\" must not be empty: give the command to run");
  CHECK(refusal(R"("workers":{"jobs":5})") == "config: \"workers.jobs\" must be a command string, got an integer (5)");
  CHECK(refusal(R"("workers":["x"])").starts_with("config: \"workers\" must be an object of name to command"));
}

TEST_CASE("config: cron entries have a name, a schedule and a command; errors name the entry and field") {
  const auto c = sm::config::parse(R"({"start_command":"x","cron":[
      {"name":"report","schedule":"0 6 * * mon","command":"./report"},
      {"name":"sweep","schedule":"@every 90s","command":"./sweep"}]})",
                                   "/srv/app")
                     .config;
  REQUIRE(c.cron.size() == 2);
  CHECK(c.cron[0].name == "report");
  CHECK(c.cron[0].schedule == "0 6 * * mon");
  CHECK(c.cron[1].when.every == std::chrono::seconds(90));
  CHECK(refusal(R"("cron":[{"name":"r","schedule":"0 6 * * * *","command":"x"}])")
            .starts_with("config: \"cron\" entry \"r\" schedule: \"0 6 * * * *\" has 6 fields"));
  CHECK(refusal(R"("cron":[{"name":"r","schedule":"61 * * * *","command":"x"}])") ==
        "config: \"cron\" entry \"r\" schedule: minute field \"61\": 61 is out of range 0-59");
  CHECK(refusal(R"("cron":[{"name":"r","schedule":"@daily"}])") == "config: \"cron[0]\" needs \"command\"");
  CHECK(refusal(R"("cron":[{"name":"r","schedule":"@daily","command":""}])") ==
        "config: \"cron[0].command\" must not be empty: give the command to run");
  CHECK(refusal(R"("cron":[{"name":"R!","schedule":"@daily","command":"x"}])") ==
        "config: \"cron[0].name\" \"R!\" must be 1-32 of a-z, 0-9 and '-'");
  CHECK(refusal(R"("cron":[{"name":"r","schedule":"@daily","command":"x"},{"name":"r","schedule":"@daily","command":"y"}])") ==
        "config: \"cron[1].name\" \"r\" is used by two cron entries");
  CHECK(refusal(R"("cron":[{"name":"r","schedule":"@daily","command":"x","user":"root"}])") ==
        "config: \"cron[0]\" does not take \"user\" (it takes name, schedule, command)");
  CHECK(refusal(R"("cron":{"name":"r"})").starts_with("config: \"cron\" must be an array"));
  CHECK(refusal(R"("cron":[{"name":"r","schedule":5,"command":"x"}])") ==
        "config: \"cron[0].schedule\" must be a string, got an integer (5)");
}
