#include "cli/apps.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/client_http.h"
#include "config/apps.h"
#include "files/atomic_file.h"
#include "log/json_text.h"

namespace sm::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string names_of(const json& apps) {
  std::vector<std::string> names;
  for (const auto& a : apps) names.push_back(str(a, "name"));
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string names_of_strings(const json& names) {
  std::vector<std::string> out;
  for (const auto& n : names) out.push_back(n.is_string() ? n.get<std::string>() : "");
  return fmt::format("{}", fmt::join(out, ", "));
}

/// Whether `dir` is `root` or inside it (both made canonical where they exist).
bool is_within(const fs::path& dir, const fs::path& root) {
  std::error_code ec;
  const fs::path d = fs::weakly_canonical(dir, ec);
  const fs::path r = fs::weakly_canonical(root, ec);
  auto [end, _] = std::mismatch(r.begin(), r.end(), d.begin(), d.end());
  return end == r.end();
}

/// The server config at `path`, as ordered JSON (its keys keep their order when written
/// back). Throws std::runtime_error saying what is wrong.
nlohmann::ordered_json read_server_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}; pass --config with the server config's path", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  auto doc = nlohmann::ordered_json::parse(ss.str(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    throw std::runtime_error(fmt::format("{} is not a JSON object; fix it first", path));
  if (!doc.contains("apps"))
    throw std::runtime_error(fmt::format("{} has no \"apps\": it is one app's config, not a server config "
                                         "(contract §13); pass --config with the server config's path",
                                         path));
  return doc;
}

/// Checks `doc` as the daemon would, then writes it over `path` (mode kept).
void write_server_config(const std::string& path, const nlohmann::ordered_json& doc) {
  const std::string text = doc.dump(2) + "\n";
  const fs::path abs = fs::absolute(path);
  config::parse_server(text, abs.parent_path());  // throws ConfigError: nothing written
  std::error_code ec;
  const auto perms = fs::status(abs, ec).permissions();
  files::write_atomic(abs, text, ec ? 0644 : static_cast<mode_t>(perms & fs::perms::mask));
}

int reload_after_edit(const ClientOptions& o, const std::string& what, std::ostream& out, std::ostream& err) {
  Reply r = call(o, "POST", "/reload", "{}", 600);
  if (!r.failure.empty()) {
    err << fmt::format("slot-machine: {}; the config is saved: `slot-machine reload` (or starting the daemon) "
                       "applies it\n",
                       unreachable(o, r.failure));
    return 1;
  }
  if (r.status != 200) {
    err << fmt::format("slot-machine: {} is saved, but the daemon did not reload it: {}\n", what, str(r.body, "error"));
    return 1;
  }
  out << what << "; the daemon reloaded its config\n";
  return 0;
}

/// GET /apps as a line per app (or its JSON); `what` names the command in errors.
int print_apps(const ClientOptions& o, const char* what, std::ostream& out, std::ostream& err) {
  Reply r = call(o, "GET", "/apps", "", 10);
  if (!answered_ok(o, r, what, err)) return 1;
  if (o.json) {
    out << log::json_text(r.body, 2) << "\n";
    return 0;
  }
  for (const auto& a : r.body.value("apps", json::array())) {
    std::vector<std::string> hosts;
    for (const auto& h : a.value("hosts", json::array())) hosts.push_back(h.is_string() ? h.get<std::string>() : "");
    std::string state;
    if (a.contains("error"))
      state = "NOT RUNNING: " + str(a, "error");
    else if (str(a, "live_commit").empty())
      state = "nothing deployed yet";
    else
      state = fmt::format("live {}  {}", str(a, "live_commit").substr(0, 12),
                          a.value("healthy", false) ? "healthy" : "NOT HEALTHY");
    if (!str(a, "operation").empty()) state += fmt::format("  ({} running)", str(a, "operation"));
    out << fmt::format("{:<16} {:<40} {}\n", str(a, "name"), hosts.empty() ? "(every host)" : fmt::format("{}", fmt::join(hosts, " ")),
                       state);
  }
  return 0;
}

}  // namespace

int choose_app(ClientOptions& o, const std::optional<std::string>& flag, bool all_ok, std::ostream& err) {
  if (flag) {
    if (!config::valid_app_name(*flag)) {
      err << fmt::format("slot-machine: --app \"{}\" is not an app name (lower-case letters, digits and '-', "
                         "at most 32)\n",
                         *flag);
      return 2;
    }
    o.app = *flag;
    return 0;
  }
  Reply r = call(o, "GET", "/apps", "", 10);
  if (r.status != 200 || !r.body.contains("apps") || !r.body["apps"].is_array()) return 0;  // the command says why
  const json& apps = r.body["apps"];
  if (apps.size() <= 1) return 0;
  std::error_code ec;
  const fs::path here = fs::current_path(ec);
  std::vector<std::string> holding;
  for (const auto& a : apps)
    if (!str(a, "repo").empty() && is_within(here, str(a, "repo"))) holding.push_back(str(a, "name"));
  if (holding.size() == 1) {
    o.app = holding.front();
    return 0;
  }
  if (holding.empty() && all_ok) {
    o.all_apps = true;
    return 0;
  }
  err << fmt::format("slot-machine: this daemon runs several apps ({}) and {}; pass --app NAME\n", names_of(apps),
                     holding.empty() ? "the current directory is in none of their repositories"
                                     : fmt::format("the current directory is in the repositories of {}",
                                                   fmt::join(holding, ", ")));
  return 2;
}

int status_all_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  return print_apps(o, "status", out, err);
}

int apps_list_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  return print_apps(o, "apps", out, err);
}

int apps_add_command(const ClientOptions& o, const std::string& server_config, const AppAddition& a,
                     std::ostream& out, std::ostream& err) {
  try {
    auto doc = read_server_config(server_config);
    if (!config::valid_app_name(a.name))
      throw std::runtime_error(fmt::format("\"{}\" is not an app name (lower-case letters, digits and '-', at most "
                                           "32, starting with a letter or digit)",
                                           a.name));
    if (doc["apps"].contains(a.name))
      throw std::runtime_error(fmt::format("{} has an app named {} already; `slot-machine apps remove {}` first, or "
                                           "choose another name",
                                           server_config, a.name, a.name));
    nlohmann::ordered_json entry{{"repo", fs::absolute(a.repo).lexically_normal().string()}, {"hosts", a.hosts}};
    if (!a.config.empty()) entry["config"] = fs::absolute(a.config).lexically_normal().string();
    if (!a.user.empty()) entry["user"] = a.user;
    if (!a.group.empty()) entry["group"] = a.group;
    doc["apps"][a.name] = entry;
    write_server_config(server_config, doc);
  } catch (const std::exception& e) {
    err << "slot-machine: " << e.what() << "; nothing changed\n";
    return 2;
  }
  return reload_after_edit(o, fmt::format("added app {} to {}", a.name, server_config), out, err);
}

int apps_remove_command(const ClientOptions& o, const std::string& server_config, const std::string& name,
                        std::ostream& out, std::ostream& err) {
  try {
    auto doc = read_server_config(server_config);
    if (!doc["apps"].is_object() || !doc["apps"].contains(name))
      throw std::runtime_error(fmt::format("{} has no app named {}", server_config, name));
    if (doc["apps"].size() == 1)
      throw std::runtime_error(fmt::format("{} is the only app of {}; a server config needs one: stop the daemon "
                                           "instead (`slot-machine stop`)",
                                           name, server_config));
    doc["apps"].erase(name);
    write_server_config(server_config, doc);
  } catch (const std::exception& e) {
    err << "slot-machine: " << e.what() << "; nothing changed\n";
    return 2;
  }
  return reload_after_edit(o, fmt::format("removed app {} from {} (its data directory is kept)", name, server_config),
                           out, err);
}

int reload_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  Reply r = call(o, "POST", "/reload", "{}", 600);
  if (!r.failure.empty()) {
    err << unreachable(o, r.failure) << "\n";
    return 1;
  }
  if (o.json) out << log::json_text(r.body, 2) << "\n";
  if (r.status != 200) {
    if (!o.json) err << "slot-machine: reload refused: " << str(r.body, "error") << "\n";
    return r.status == 400 ? 2 : 1;
  }
  if (o.json) return 0;
  const json& c = r.body["apps"];
  for (const char* k : {"added", "removed", "changed", "rerouted"})
    if (c.contains(k) && !c[k].empty())
      out << fmt::format("{:<10} {}\n", std::string(k) + ":", names_of_strings(c[k]));
  if (r.body.contains("not_applied")) out << "not applied: " << str(r.body, "not_applied") << "\n";
  out << "reloaded\n";
  return 0;
}

}  // namespace sm::cli
