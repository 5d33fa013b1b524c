#pragma once
// The thin clients: `deploy`, `rollback` and `status` talk to the daemon's API.

#include <optional>
#include <ostream>
#include <string>

namespace sm::api {

struct ClientOptions {
  std::string host = "127.0.0.1";
  int port = 9100;
  bool json = false;   // print the daemon's JSON instead of text
  bool quiet = false;  // deploy/rollback: only the final line
  bool tty = false;    // stdout is a terminal: colour the final line
  int wait_s = 0;      // deploy/rollback/restart: wait this long for a running operation
};

/// Each returns the process exit code: 0 on success, 1 when the daemon cannot be
/// reached or the operation failed (the daemon's error on `err`).
int deploy_command(const ClientOptions& opts, const std::optional<std::string>& commit,
                   std::ostream& out, std::ostream& err);
int rollback_command(const ClientOptions& opts, std::ostream& out, std::ostream& err);
/// `restart`: a fresh process of the live version, switched to without downtime.
int restart_command(const ClientOptions& opts, std::ostream& out, std::ostream& err);
/// `cancel`: stops the running deploy or rollback. 0 when one was cancelled.
int cancel_command(const ClientOptions& opts, std::ostream& out, std::ostream& err);
/// `upgrade`: the daemon hands over to the binary now installed at its path. 0 when the
/// new daemon serves.
int upgrade_command(const ClientOptions& opts, std::ostream& out, std::ostream& err);
int status_command(const ClientOptions& opts, std::ostream& out, std::ostream& err);
/// `logs`: the last `lines` lines of a slot's log; with `follow`, then every new line
/// until interrupted.
int logs_command(const ClientOptions& opts, const std::string& slot, int lines, bool follow,
                 std::ostream& out, std::ostream& err);
/// `history`: the newest `limit` journal entries as a table (or JSON), newest first.
int history_command(const ClientOptions& opts, int limit, std::ostream& out, std::ostream& err);

}  // namespace sm::api
