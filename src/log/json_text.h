#pragma once
// JSON text that never throws: strings from outside (a revision, a query parameter, a
// line of app output) may hold invalid UTF-8, which nlohmann::json::dump() throws on.

#include <nlohmann/json.hpp>
#include <string>

namespace sm::log {

/// `j` as JSON text (`indent` as dump()'s); invalid UTF-8 becomes U+FFFD.
inline std::string json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace sm::log
