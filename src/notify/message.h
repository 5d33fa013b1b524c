#pragma once
// What a notification says (contract §9): the daemon's events that notify targets hear
// about, as the JSON body they get, or as a Slack message.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "app/events.h"

namespace sm::notify {

/// One notification: its event name ("deploy_succeeded" ...) and the contract's fields:
/// event, time, commit, slot, previous_commit, duration_ms, stage, error, host.
struct Notice {
  std::string event;
  nlohmann::json fields;
};

/// The notice `e` makes, if any (stages, output and probes make none). `host` names
/// this machine in it.
std::optional<Notice> notice_of(const app::Event& e, const std::string& host);

/// The daemon_started notice, with what is live (`commit`, `slot`: "" when nothing is).
Notice daemon_started(const std::string& commit, const std::string& slot, const std::string& host);

/// The body a target of `format` ("json" or "slack") gets for `n`.
std::string render(const Notice& n, const std::string& format);

}  // namespace sm::notify
