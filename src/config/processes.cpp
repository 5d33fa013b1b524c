// The config of processes beside the web one (contract §16): "workers" and "cron".
#include <algorithm>
#include <set>

#include "config/config.h"
#include "config/fields.h"

namespace sm::config {
using namespace fields;

namespace {

/// A command: a non-empty string without NUL bytes (it goes to /bin/sh -c).
std::string command_of(const json& v, const std::string& field) {
  if (!v.is_string())
    throw ConfigError(fmt::format("config: \"{}\" must be a command string, got {} ({})", field, type_name(v),
                                  log::json_text(v)));
  const std::string cmd = v.get<std::string>();
  if (cmd.find_first_not_of(" \t\r\n") == std::string::npos)
    throw ConfigError(fmt::format("config: \"{}\" must not be empty: give the command to run", field));
  if (cmd.find('\0') != std::string::npos)
    throw ConfigError(fmt::format("config: \"{}\" must not contain a NUL byte", field));
  return cmd;
}

}  // namespace

bool valid_process_name(const std::string& name) {
  return !name.empty() && name.size() <= 32 &&
         std::all_of(name.begin(), name.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

std::map<std::string, std::string> parse_workers(const json& w) {
  if (!w.is_object())
    throw ConfigError(fmt::format("config: \"workers\" must be an object of name to command, like "
                                  "{{\"jobs\": \"bundle exec sidekiq\"}}, got {}",
                                  type_name(w)));
  if (w.size() > 64) throw ConfigError(fmt::format("config: \"workers\" has {} entries; at most 64", w.size()));
  std::map<std::string, std::string> out;
  for (const auto& [name, command] : w.items()) {
    if (!valid_process_name(name))
      throw ConfigError(fmt::format("config: worker name {} must be 1-32 of a-z, 0-9 and '-'", log::json_text(name)));
    out[name] = command_of(command, "workers." + name);
  }
  return out;
}

std::vector<Config::CronJob> parse_cron(const json& c) {
  if (!c.is_array())
    throw ConfigError(fmt::format("config: \"cron\" must be an array of {{\"name\", \"schedule\", \"command\"}}, "
                                  "got {}",
                                  type_name(c)));
  if (c.size() > 256) throw ConfigError(fmt::format("config: \"cron\" has {} entries; at most 256", c.size()));
  static const std::set<std::string> kKeys = {"name", "schedule", "command"};
  std::vector<Config::CronJob> out;
  for (size_t i = 0; i < c.size(); ++i) {
    const json& e = c[i];
    const std::string where = fmt::format("cron[{}]", i);
    if (!e.is_object())
      throw ConfigError(fmt::format("config: \"{}\" must be an object with name, schedule and command, got {}", where,
                                    type_name(e)));
    for (const auto& [key, _] : e.items())
      if (!kKeys.count(key))
        throw ConfigError(fmt::format("config: \"{}\" does not take \"{}\" (it takes name, schedule, command)", where,
                                      key));
    for (const char* key : {"name", "schedule", "command"})
      if (!e.contains(key)) throw ConfigError(fmt::format("config: \"{}\" needs \"{}\"", where, key));
    Config::CronJob job;
    job.name = get_string(e, "name", "", where);
    if (!valid_process_name(job.name))
      throw ConfigError(fmt::format("config: \"{}.name\" {} must be 1-32 of a-z, 0-9 and '-'", where,
                                    log::json_text(job.name)));
    for (const auto& other : out)
      if (other.name == job.name)
        throw ConfigError(fmt::format("config: \"{}.name\" \"{}\" is used by two cron entries", where, job.name));
    job.schedule = get_string(e, "schedule", "", where);
    try {
      job.when = cron::parse(job.schedule);
    } catch (const cron::ScheduleError& err) {
      throw ConfigError(fmt::format("config: \"cron\" entry \"{}\" schedule: {}", job.name, err.what()));
    }
    job.command = command_of(e.at("command"), fmt::format("{}.command", where));
    out.push_back(std::move(job));
  }
  return out;
}

}  // namespace sm::config
