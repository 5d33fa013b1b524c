#include "app/state.h"
#include "files/atomic_file.h"
#include "log/json_text.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace sm::app {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kFormat = 1;

json to_json(const SlotRecord& r, bool live) {
  json j{{"slot", std::string(1, r.slot)}, {"commit", r.commit}, {"since", r.since}};
  if (!r.standby.empty()) {
    j["standby"] = r.standby;
    j["standby_until"] = r.standby_until;
  }
  if (live || !r.standby.empty()) {
    j["pgid"] = r.pgid;
    j["token"] = r.token;
    j["port"] = r.port;
    j["internal_port"] = r.internal_port;
  }
  return j;
}

SlotRecord from_json(const json& j, bool live, const char* which) {
  SlotRecord r;
  const std::string slot = j.at("slot").get<std::string>();
  if (slot != "a" && slot != "b") throw std::runtime_error(fmt::format("{}.slot is \"{}\"", which, slot));
  r.slot = slot[0];
  r.commit = j.at("commit").get<std::string>();
  if (r.commit.size() != 40 || r.commit.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw std::runtime_error(fmt::format("{}.commit \"{}\" is not a full hash", which, r.commit));
  r.since = j.value("since", "");
  r.standby = j.value("standby", "");
  if (!live && !r.standby.empty()) {
    if (r.standby != "warm" && r.standby != "frozen")
      throw std::runtime_error(fmt::format("{}.standby is \"{}\"", which, r.standby));
    r.standby_until = j.value("standby_until", "");
  }
  if (live || !r.standby.empty()) {
    r.pgid = j.value("pgid", 0);
    r.token = j.value("token", "");
    r.port = j.value("port", 0);
    r.internal_port = j.value("internal_port", 0);
    if (r.pgid < 0 || r.port < 0 || r.port > 65535 || r.internal_port < 0 || r.internal_port > 65535)
      throw std::runtime_error(fmt::format("{} has an impossible pgid or port", which));
  }
  return r;
}

/// Points `link` at `target` atomically (a temp symlink renamed over it), or removes it.
void set_link(const fs::path& link, const std::optional<fs::path>& target) {
  std::error_code ec;
  if (!target) {
    fs::remove(link, ec);
    return;
  }
  const fs::path tmp = link.string() + ".tmp";
  fs::remove(tmp, ec);
  fs::create_symlink(*target, tmp, ec);
  if (!ec) fs::rename(tmp, link, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot point {} at {}: {}", link.string(), target->string(), ec.message()));
}

}  // namespace

void save_state(const fs::path& dir, const PersistedState& s) {
  json j{{"format", kFormat},
         {"live", s.live ? to_json(*s.live, true) : json(nullptr)},
         {"previous", s.previous ? to_json(*s.previous, false) : json(nullptr)},
         {"last_deploy_time", s.last_deploy_time}};
  if (!s.workers.empty()) {
    json w = json::array();
    for (const auto& r : s.workers)
      w.push_back({{"name", r.name}, {"command", r.command}, {"commit", r.commit}, {"pgid", r.pgid},
                   {"token", r.token}, {"since", r.since}, {"restarts", r.restarts}});
    j["workers"] = std::move(w);
  }
  files::write_atomic(dir / "state.json", log::json_text(j, 2) + "\n");
  auto slot_dir = [](const std::optional<SlotRecord>& r) -> std::optional<fs::path> {
    if (!r) return std::nullopt;
    return fs::path(fmt::format("slot-{}", r->slot));  // relative: the data dir can move
  };
  set_link(dir / "live", slot_dir(s.live));
  set_link(dir / "prev", slot_dir(s.previous));
}

LoadedState load_state(const fs::path& dir) {
  const fs::path path = dir / "state.json";
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream text;
  text << in.rdbuf();
  try {
    const json j = json::parse(text.str());
    if (!j.is_object()) throw std::runtime_error("it is not a JSON object");
    if (j.value("format", 0) != kFormat)
      throw std::runtime_error(fmt::format("unknown format {}", j.value("format", 0)));
    PersistedState s;
    if (j.contains("live") && !j.at("live").is_null()) s.live = from_json(j.at("live"), true, "live");
    if (j.contains("previous") && !j.at("previous").is_null())
      s.previous = from_json(j.at("previous"), false, "previous");
    if (s.live && s.previous && s.live->slot == s.previous->slot)
      throw std::runtime_error("live and previous name the same slot");
    s.last_deploy_time = j.value("last_deploy_time", "");
    if (j.contains("workers")) {
      for (const auto& w : j.at("workers")) {
        WorkerRecord r{w.at("name").get<std::string>(), w.at("command").get<std::string>(),
                       w.at("commit").get<std::string>(), w.at("pgid").get<pid_t>(), w.at("token").get<std::string>(),
                       w.value("since", ""), w.value("restarts", 0)};
        if (r.pgid <= 0 || r.token.empty()) throw std::runtime_error(fmt::format("worker {} has no pgid or token", r.name));
        s.workers.push_back(std::move(r));
      }
    }
    return {std::move(s), ""};
  } catch (const std::exception& e) {
    return {std::nullopt, fmt::format("{} is unreadable ({}); starting with no live or previous "
                                      "slot (slot directories and logs are kept)",
                                      path.string(), e.what())};
  }
}

}  // namespace sm::app
