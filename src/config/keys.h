#pragma once
// The top-level keys slot-machine.json may hold, and what to say about the others.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sm::config {

/// `unknown key "start_comand" (did you mean "start_command"?)` for each top-level key
/// of `doc` the config does not know (in key order), naming the nearest known key when
/// it is a few edits away (Levenshtein distance at most max(2, length/4)).
std::vector<std::string> unknown_keys(const nlohmann::json& doc);
/// The same against another set of known keys (an app entry of a server config).
std::vector<std::string> unknown_keys(const nlohmann::json& doc, const std::vector<std::string>& known);

}  // namespace sm::config
