#pragma once
// What the API server (api/) and the dashboard (ui/) share of cpp-httplib: the one way a
// JSON answer is written.

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "log/json_text.h"

namespace sm::http {

/// Answers `status` with `body` as one line of JSON: every answer of the API and the
/// dashboard that is not a stream.
inline void reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(log::json_text(body) + "\n", "application/json");
}

}  // namespace sm::http
