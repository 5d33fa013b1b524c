#pragma once
// How the thin clients speak to a daemon: one HTTP(S) exchange, or a streamed operation,
// with the token and the trust the options name; and what to say when it fails.
// Shared by the client commands (client.cpp); not part of the daemon.

#include <ctime>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "cli/client.h"

namespace sm::cli {

/// An HTTP exchange with the daemon: a status and a parsed JSON body, or the reason
/// it could not happen.
struct Reply {
  int status = 0;
  nlohmann::json body;
  std::string failure;     // non-empty when the daemon could not be reached
  long long took_ms = -1;  // a streamed operation's duration
};

/// `method` (GET or POST) `path` with `body`, waiting up to `read_timeout_s` for the answer.
Reply call(const ClientOptions& o, const std::string& method, const std::string& path,
           const std::string& body, time_t read_timeout_s);

/// POSTs an operation asking for NDJSON progress and prints each stage as it ends
/// (with its duration), setup output indented under it, slow health checks; returns
/// the final answer as if the call had been plain.
Reply call_streaming(const ClientOptions& o, const std::string& path, const std::string& body,
                     const char* what, std::ostream& out);

/// GETs `path`, handing the body to `on_data` as it arrives when the answer is 200; else
/// returns the failure (or the status and error body) in the Reply.
Reply call_following(const ClientOptions& o, const std::string& path, time_t read_timeout_s,
                     const std::function<bool(const char*, size_t)>& on_data);

/// POSTs `body` to `path` asking for NDJSON and hands each line, parsed, to `on_event` as
/// it arrives (an answer other than 200: its status and error body in the Reply).
Reply post_events(const ClientOptions& o, const std::string& path, const std::string& body, time_t read_timeout_s,
                  const std::function<void(const nlohmann::json&)>& on_event);

/// "slot-machine: cannot reach the daemon at URL (why); ..." with what to check.
std::string unreachable(const ClientOptions& o, const std::string& why);

/// Checks the daemon answers `GET /` before anything else is done; prints why when not.
bool reachable(const ClientOptions& o, std::ostream& err);

/// True when `r` is a 200; otherwise prints why (unreachable, or the daemon's error for
/// `what`) and returns false.
bool answered_ok(const ClientOptions& o, const Reply& r, const char* what, std::ostream& err);

/// `j[key]` when it is a string, else "".
std::string str(const nlohmann::json& j, const char* key);

}  // namespace sm::cli
