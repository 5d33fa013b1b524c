#pragma once
// The thin clients: `deploy`, `rollback` and `status` talk to the daemon's API.

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace sm::cli {

struct ClientOptions {
  std::string url = "http://127.0.0.1:9100";  // the daemon's API (see remote_url)
  bool remote = false;                        // url came from --remote (for messages)
  int local_port = 0;                         // not remote: the port of url
  std::optional<std::string> token;           // sent as Authorization: Bearer
  std::string cacert;                         // https: trust this PEM file, not the system's CAs
  bool json = false;   // print the daemon's JSON instead of text
  bool quiet = false;  // deploy/rollback: only the final line
  bool tty = false;    // stdout is a terminal: colour the final line
  int wait_s = 0;      // deploy/rollback/restart: wait this long for a running operation
  bool force = false;  // deploy: redeploy a commit that is live and healthy (else nothing is done)
  int canary_percent = 0;  // deploy --canary: the share of new visitors (1-99); 0: a plain deploy
  std::string app;     // the app an app-scoped command acts on (/apps/NAME/...); "": the only one
  bool all_apps = false;  // status: every app of several, a line each
};

/// `path` of an app-scoped route (/status, /deploy...) for the app `o` names.
inline std::string app_path(const ClientOptions& o, const std::string& path) {
  return o.app.empty() ? path : "/apps/" + o.app + path;
}

/// Each returns the process exit code: 0 on success, 1 when the daemon cannot be
/// reached or the operation failed (the daemon's error on `err`).
/// `quarantine`: the objects of a push not yet in the repository (the pre-receive hook).
int deploy_command(const ClientOptions& opts, const std::optional<std::string>& commit,
                   std::ostream& out, std::ostream& err, const std::string& quarantine = "");
/// `deploy --remote A --remote B ...`: deploys the same commit (COMMIT, or HEAD here) to
/// each daemon in turn and stops at the first failure, saying on which host and where the
/// others stand. 0 when every one succeeded.
int deploy_to_each(const ClientOptions& opts, const std::vector<std::string>& remotes,
                   const std::optional<std::string>& commit, std::ostream& out, std::ostream& err);
int rollback_command(const ClientOptions& opts, std::ostream& out, std::ostream& err);
/// `promote`: makes the running canary live (contract §14).
int promote_command(const ClientOptions& opts, std::ostream& out, std::ostream& err);
/// `restart`: a fresh process of the live version, switched to without downtime.
int restart_command(const ClientOptions& opts, std::ostream& out, std::ostream& err);
/// `cancel`: stops the running deploy or rollback. 0 when one was cancelled.
int cancel_command(const ClientOptions& opts, std::ostream& out, std::ostream& err);
/// `upgrade`: the daemon hands over to the binary now installed at its path. 0 when the
/// new daemon serves.
/// `stop`: the daemon drains its apps and exits, as on SIGTERM; waits up to `wait_s`
/// for it to be gone. 0 when it has.
int stop_command(const ClientOptions& opts, int wait_s, std::ostream& out, std::ostream& err);
int upgrade_command(const ClientOptions& opts, std::ostream& out, std::ostream& err);
int status_command(const ClientOptions& opts, std::ostream& out, std::ostream& err);
/// `logs`: the last `lines` lines of a slot's log (or, with `worker` or `cron` set, that
/// worker's or cron job's);
/// with `follow`, then every new line until interrupted.
int logs_command(const ClientOptions& opts, const std::string& slot, const std::string& worker,
                 const std::string& cron, int lines, bool follow, std::ostream& out, std::ostream& err);
/// `history`: the newest `limit` journal entries as a table (or JSON), newest first.
int history_command(const ClientOptions& opts, int limit, std::ostream& out, std::ostream& err);

/// Fills opts.url, remote, token and cacert from the flags, ./slot-machine.json (api_port,
/// api_tls, api_token_file) and $SLOT_MACHINE_API_TOKEN; normalises `remotes` in place
/// (several only when `many_allowed`). Returns 0, or 2 after saying on `err` what is wrong.
int connection_options(std::optional<int> api_port, std::vector<std::string>& remotes,
                       const std::string& cacert, bool many_allowed, ClientOptions& opts,
                       std::ostream& err, const std::string& config = "slot-machine.json");

/// A --remote URL as "http(s)://host:port" (the scheme's port when none is given; one
/// trailing '/' allowed). Throws std::invalid_argument saying what is wrong with it.
std::string remote_url(const std::string& url);

}  // namespace sm::cli
