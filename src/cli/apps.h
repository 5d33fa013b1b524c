#pragma once
// The client's side of several apps (contract §13): which app a command acts on, the
// per-app status lines, `apps` (list, add, remove: the server config edited in place)
// and `reload`.

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cli/client.h"

namespace sm::cli {

/// Fills o.app: `flag` when given (--app NAME); else asks GET /apps and, when the daemon
/// runs several apps, takes the one whose repository holds the current directory. With
/// none or several of them: 2 after listing the names on `err`, unless `all_ok` (status),
/// which then sets o.all_apps. A daemon that cannot be reached, or that serves one app:
/// 0, o.app left empty (the command says what is wrong, or acts on the only app).
int choose_app(ClientOptions& o, const std::optional<std::string>& flag, bool all_ok, std::ostream& err);

/// `status` of every app, a line each.
int status_all_command(const ClientOptions& o, std::ostream& out, std::ostream& err);
/// `apps`: the daemon's apps, a line each (or its JSON).
int apps_list_command(const ClientOptions& o, std::ostream& out, std::ostream& err);

/// What `apps add` puts into the server config.
struct AppAddition {
  std::string name;
  std::string repo;
  std::vector<std::string> hosts;
  std::string config;  // the app's own file; "" for the default
  std::string user, group;  // the system user (and group) it runs as; "" for none
};
/// `apps add` / `apps remove`: edits the server config at `server_config` in place (its
/// other content kept, written atomically, refused when the result would not be a valid
/// server config), then asks the daemon to reload it.
int apps_add_command(const ClientOptions& o, const std::string& server_config, const AppAddition& a,
                     std::ostream& out, std::ostream& err);
int apps_remove_command(const ClientOptions& o, const std::string& server_config, const std::string& name,
                        std::ostream& out, std::ostream& err);
/// `reload`: POST /reload; prints what changed. 2 when the daemon refused the new config.
int reload_command(const ClientOptions& o, std::ostream& out, std::ostream& err);

}  // namespace sm::cli
