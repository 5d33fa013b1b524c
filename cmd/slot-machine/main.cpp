// slot-machine: CLI11 wiring of the subcommands. No logic beyond parsing and dispatch.

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "cli/apps.h"
#include "cli/client.h"
#include "cli/hook.h"
#include "cli/run.h"
#include "cli/traffic.h"
#include "server/start.h"
#include "config/config.h"
#include "git/jobs.h"
#include "init/init.h"
#include "service/units.h"
#include "version/version.h"

namespace {

const char* kUsage =
    "usage: slot-machine <command> [options]\n"
    "\n"
    "commands:\n"
    "  init       detect the project here and write slot-machine.json\n"
    "  start      run the daemon in the foreground\n"
    "  deploy     deploy COMMIT (default: HEAD of the repository in cwd)\n"
    "  rollback   swap back to the previous slot\n"
    "  restart    start the live version afresh and switch to it (no downtime)\n"
    "  cancel     stop the running deploy or rollback\n"
    "  upgrade    hand over to the slot-machine binary now installed (no downtime)\n"
    "  stop       stop the daemon: drain the apps and exit\n"
    "  reload     re-read a server config: apps added start, removed ones stop\n"
    "  apps       list the daemon's apps; apps add NAME / apps remove NAME\n"
    "  systemd    write the .service and .socket units for this app\n"
    "  status     show what is running\n"
    "  history    list past deploys, rollbacks and restarts\n"
    "  logs       show (-f: follow) a slot's app and setup output\n"
    "  run        run a command in the live release: slot-machine run -- rails console\n"
    "  maintenance on|off   answer every request with 503 and a page (deploys go on)\n"
    "  pause      hold new requests (a migration); resume lets them on\n"
    "  resume     let the requests a pause holds go on\n"
    "  hook       install (or uninstall) the git pre-receive hook: deploy on git push\n"
    "  version    print the version\n"
    "\n"
    "Run `slot-machine <command> --help` for a command's options.\n";

const std::set<std::string> kCommands = {"init", "start", "deploy", "rollback", "restart", "cancel", "upgrade", "stop", "systemd", "status", "history", "logs", "hook", "version", "reload", "apps", "run", "maintenance", "pause", "resume", "promote"};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string first = argv[1];
  if (first == sm::git::kWorkerCommand) sm::git::worker_main(argc, argv);  // the daemon's own child
  if (first == "--version") {
    std::cout << "slot-machine (cpp) spec/1 " << sm::kVersion << "\n";
    return 0;
  }
  const bool help = first == "-h" || first == "--help";
  if (!help && !kCommands.count(first)) {
    std::cerr << "slot-machine: unknown " << (first.rfind('-', 0) == 0 ? "option" : "command")
              << " \"" << first << "\"\n\n" << kUsage;
    return 2;
  }

  CLI::App app{"slot-machine: zero-downtime blue-green deploys of one app on one machine",
               "slot-machine"};
  app.footer("Run `slot-machine <command> --help` for a command's options.");
  app.require_subcommand(1);

  auto* init = app.add_subcommand("init", "detect the project here and write slot-machine.json");
  bool force = false;
  init->add_flag("--force", force, "overwrite an existing slot-machine.json");
  bool runner = false;
  init->add_flag("--runner", runner,
                 "start a package.json start script through the package manager (npm start, "
                 "bun run start) instead of writing the script's own text");

  auto* start = app.add_subcommand("start", "run the daemon in the foreground");
  sm::server::StartOptions start_opts;
  int start_port = 0;
  start->add_option("--config", start_opts.config, "config file (default ./slot-machine.json)");
  start->add_option("--repo", start_opts.repo, "the app's git repository (default: cwd)");
  start->add_option("--data", start_opts.data, "data directory (default ./.slot-machine)");
  start->add_option("--port", start_port, "API port; beats the config's api_port (default 9100)");
  start->add_flag("--no-proxy", start_opts.no_proxy, "direct mode: the app binds `port` itself");

  sm::cli::ClientOptions client;
  int api_port = 0;
  std::vector<std::string> remotes;
  std::string cacert;
  std::string app_name;
  auto add_app_flag = [&](CLI::App* sub) {
    sub->add_option("--app", app_name,
                    "the app to act on, when the daemon runs several (default: the one whose repository holds "
                    "the current directory)");
  };
  auto add_connection_flags = [&](CLI::App* sub) {
    sub->add_option("--api-port", api_port, "daemon API port (default: api_port from ./slot-machine.json, else 9100)");
    sub->add_option("--remote", remotes,
                    "a daemon's API elsewhere, http://HOST:PORT or https://HOST:PORT, instead of "
                    "--api-port (deploy takes several: one after the other)");
    sub->add_option("--cacert", cacert, "https: trust this PEM certificate (or CA) instead of the system's CAs")
        ->check(CLI::ExistingFile);
  };
  auto add_client_flags = [&](CLI::App* sub) {
    add_connection_flags(sub);
    sub->add_flag("--json", client.json, "print the daemon's JSON answer");
  };
  auto* deploy = app.add_subcommand("deploy", "deploy COMMIT (default: HEAD of the repository in cwd)");
  std::string commit;
  deploy->add_option("COMMIT", commit, "full or short hash, branch, tag or HEAD");
  add_client_flags(deploy);
  deploy->add_flag("-q,--quiet", client.quiet, "print only the final line, not each stage");
  deploy->add_flag("--force", client.force,
                   "deploy even when COMMIT is already live and healthy (otherwise nothing is done)");
  // --wait alone waits 600 s, --wait=N waits N seconds. A flag, so `deploy --wait v1.2`
  // still deploys v1.2.
  auto add_wait = [&](CLI::App* sub) {
    sub->add_flag("--wait{600}", client.wait_s,
                  "if another operation runs, wait for it (first come, first served), 600 s or "
                  "--wait=SECONDS, instead of failing at once")
        ->check(CLI::Range(1, 86400));
  };
  deploy->add_option("--canary", client.canary_percent,
                     "start it as a canary: PERCENT (1-99) of new visitors get it, the rest stay on live, "
                     "until promote or rollback (proxy mode)")
      ->check(CLI::Range(1, 99));
  add_wait(deploy);
  auto* rollback = app.add_subcommand("rollback", "swap back to the previous slot");
  add_client_flags(rollback);
  add_wait(rollback);
  rollback->add_flag("-q,--quiet", client.quiet, "print only the final line, not each stage");
  auto* promote = app.add_subcommand("promote", "make the running canary live (deploy --canary started it)");
  add_client_flags(promote);
  add_wait(promote);
  promote->add_flag("-q,--quiet", client.quiet, "print only the final line, not each stage");
  auto* status = app.add_subcommand("status", "show what is running");
  add_client_flags(status);
  auto* restart = app.add_subcommand("restart", "start the live version afresh and switch to it");
  add_client_flags(restart);
  add_wait(restart);
  restart->add_flag("-q,--quiet", client.quiet, "print only the final line, not each stage");

  auto* cancel = app.add_subcommand("cancel", "stop the running deploy or rollback at its current stage");
  add_client_flags(cancel);

  auto* stop = app.add_subcommand("stop", "stop the daemon: drain the apps and exit, as SIGTERM does");
  add_client_flags(stop);
  int stop_wait = 120;
  stop->add_option("--timeout", stop_wait, "seconds to wait for it to be gone (default 120)")
      ->check(CLI::Range(1, 86400));

  auto* upgrade = app.add_subcommand(
      "upgrade", "replace the daemon by the binary now at its path, keeping the apps and every connection");
  add_client_flags(upgrade);

  auto* systemd = app.add_subcommand("systemd", "write NAME.service and NAME.socket for the app whose config this is");
  sm::service::UnitOptions units;
  systemd->add_option("--config", units.config, "config file (default ./slot-machine.json)");
  systemd->add_option("--name", units.name, "unit name (default slot-machine-<the config's directory name>)");
  systemd->add_option("--out", units.out, "directory to write to (default /etc/systemd/system)");
  systemd->add_option("--repo", units.repo, "the app's git repository (default: the config's directory)");
  systemd->add_option("--data", units.data, "data directory (default <repo>/.slot-machine)");
  systemd->add_option("--user", units.user, "User= for the daemon and the apps (default: the config file's owner; root: none)");
  systemd->add_flag("--no-proxy", units.no_proxy, "direct mode: the socket unit holds only the API port");
  systemd->add_flag("--force", units.force, "overwrite units that exist");

  auto* history = app.add_subcommand("history", "list past deploys, rollbacks and restarts, newest first");
  int history_n = 20;
  history->add_option("-n", history_n, "how many entries (default 20)")->check(CLI::Range(1, 10000));
  add_client_flags(history);
  auto* logs = app.add_subcommand("logs", "show a slot's app and setup output");
  int logs_n = 100;
  bool logs_follow = false;
  std::string logs_slot = "live";
  logs->add_option("-n", logs_n, "how many lines from the end (default 100)")->check(CLI::Range(0, 100000));
  logs->add_flag("-f,--follow", logs_follow, "then print new lines as they are written, until ^C");
  auto* logs_slot_opt = logs->add_option("--slot", logs_slot, "live (default), previous, a or b")
      ->check(CLI::IsMember({"live", "previous", "a", "b"}));
  std::string logs_worker, logs_cron;
  auto process_name = [](const char* what) {
    return [what](const std::string& n) {
      return sm::config::valid_process_name(n)
                 ? std::string()
                 : std::string("a ") + what + " name is 1-32 of a-z, 0-9 and '-', got \"" + n + "\"";
    };
  };
  auto* logs_worker_opt = logs->add_option("--worker", logs_worker, "a worker's output instead (its name in \"workers\")")
      ->check(process_name("worker"))
      ->excludes(logs_slot_opt);
  logs->add_option("--cron", logs_cron, "a cron job's output instead (its name in \"cron\")")
      ->check(process_name("cron job"))
      ->excludes(logs_slot_opt)
      ->excludes(logs_worker_opt);
  add_connection_flags(logs);
  auto* hook = app.add_subcommand("hook", "deploy on git push: install or uninstall the pre-receive hook");
  hook->require_subcommand(1);
  sm::cli::HookOptions hook_opts;
  auto* hook_install = hook->add_subcommand("install", "write <repo>/hooks/pre-receive: a push of the branch deploys it");
  hook_install->add_option("--repo", hook_opts.repo, "the repository pushes go to (default: cwd)");
  hook_install->add_option("--branch", hook_opts.branch, "the branch that deploys (default: the one HEAD names)");
  hook_install->add_option("--config", hook_opts.config, "the daemon's config (default ./slot-machine.json)");
  hook_install->add_flag("--force", hook_opts.force, "replace a pre-receive hook that is not slot-machine's");
  auto* hook_uninstall = hook->add_subcommand("uninstall", "remove the pre-receive hook `hook install` wrote");
  hook_uninstall->add_option("--repo", hook_opts.repo, "the repository (default: cwd)");
  auto* hook_run = hook->add_subcommand("run", "what the hook runs (git gives it the pushed refs on stdin)");
  std::string hook_branch, hook_config = "slot-machine.json";
  hook_run->add_option("--branch", hook_branch, "the branch that deploys")->required();
  hook_run->add_option("--config", hook_config, "the daemon's config");
  auto* version = app.add_subcommand("version", "print the version");

  auto* reload = app.add_subcommand("reload", "re-read the daemon's server config (\"apps\"): apps added start, "
                                              "apps removed are drained and stopped, the others are not touched");
  add_client_flags(reload);
  auto* apps = app.add_subcommand("apps", "list the apps of a daemon that runs several");
  add_client_flags(apps);
  std::string server_config = "slot-machine.json";
  sm::cli::AppAddition addition;
  auto* apps_add = apps->add_subcommand("add", "add an app to the server config and reload it");
  apps_add->add_option("NAME", addition.name, "the app's name: lower-case letters, digits, '-'")->required();
  apps_add->add_option("--repo", addition.repo, "the app's git repository")->required();
  apps_add->add_option("--host", addition.hosts, "a host name it is reached by (repeat for more; *.domain, "
                                                 "host/prefix)")->required();
  apps_add->add_option("--app-config", addition.config, "the app's own config (default <repo>/slot-machine.json)");
  apps_add->add_option("--user", addition.user,
                       "the system user its setup and app run as (a daemon running as root needs one; root: say "
                       "--user root)");
  apps_add->add_option("--group", addition.group, "its group (default: the user's)");
  apps_add->add_option("--config", server_config, "the server config (default ./slot-machine.json)");
  add_client_flags(apps_add);
  auto* apps_remove = apps->add_subcommand("remove", "remove an app from the server config and reload it");
  std::string remove_name;
  apps_remove->add_option("NAME", remove_name, "the app's name")->required();
  apps_remove->add_option("--config", server_config, "the server config (default ./slot-machine.json)");
  add_client_flags(apps_remove);
  auto* run = app.add_subcommand("run", "run a command in the live slot with the app's environment: run -- CMD ARGS...");
  std::string run_slot = "live";
  std::vector<std::string> run_argv;
  run->add_option("--slot", run_slot, "live (default) or previous")->check(CLI::IsMember({"live", "previous"}));
  run->allow_extras();  // words before "--": told where they belong, below
  run->footer("The command and its arguments come after --, exactly as given: slot-machine run -- rails console");
  add_connection_flags(run);
  auto* maintenance = app.add_subcommand("maintenance", "on: every request gets 503 and a page (deploys go on); off");
  std::string maintenance_state, maintenance_page;
  int maintenance_retry = 60;
  maintenance->add_option("STATE", maintenance_state, "on or off")->required()->check(CLI::IsMember({"on", "off"}));
  maintenance->add_option("--page", maintenance_page, "an HTML page to show (UTF-8, at most 1 MiB; default a built-in one)");
  maintenance->add_option("--retry-after", maintenance_retry, "seconds, sent as Retry-After (default 60)")
      ->check(CLI::Range(1, 86400));
  add_client_flags(maintenance);
  auto* pause = app.add_subcommand("pause", "hold new requests until resume (or the timeout: then 503)");
  int pause_timeout = 30;
  pause->add_option("--timeout", pause_timeout, "seconds at most (1-600, default 30)")->check(CLI::Range(1, 600));
  add_client_flags(pause);
  auto* resume = app.add_subcommand("resume", "let the requests a pause holds go on");
  add_client_flags(resume);
  for (auto* sub : {deploy, rollback, promote, status, restart, cancel, history, logs, run, maintenance, pause, resume})
    add_app_flag(sub);
  add_app_flag(hook_install);
  add_app_flag(hook_run);

  try {
    // `run`'s command is everything after its "--", word for word: kept from CLI11, which
    // would end a --remote list there or read "[a,b]" as a list.
    int parsed = argc;
    if (first == "run")
      for (int i = 2; i < argc; ++i)
        if (std::string_view(argv[i]) == "--") {
          run_argv.assign(argv + i + 1, argv + argc);
          parsed = i;
          break;
        }
    app.parse(parsed, argv);
  } catch (const CLI::ParseError& e) {
    // Help is success; every other parse error is a usage error (exit 2).
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (*version) {
    std::cout << "slot-machine (cpp) spec/1 " << sm::kVersion << "\n";
    return 0;
  }
  if (*init) {
    try {
      std::cout << sm::init::run(std::filesystem::current_path(), force, runner).message << "\n";
      return 0;
    } catch (const std::exception& e) {
      std::cerr << "slot-machine: " << e.what() << "\n";
      return 1;
    }
  }
  if (*systemd) return sm::service::write_units(units, std::cout, std::cerr);
  if (*hook_install) {
    hook_opts.app = app_name;
    return sm::cli::hook_install(hook_opts, std::cout, std::cerr);
  }
  if (*hook_uninstall) return sm::cli::hook_uninstall(hook_opts, std::cout, std::cerr);
  if (*hook_run) {
    std::vector<std::string> none;
    if (int code = sm::cli::connection_options(std::nullopt, none, "", false, client, std::cerr, hook_config))
      return code;
    if (int code = sm::cli::choose_app(client, hook_run->count("--app") ? std::optional(app_name) : std::nullopt,
                                       false, std::cerr))
      return code;
    return sm::cli::hook_run(client, hook_branch, std::cin, std::cout, std::cerr);
  }
  if (*start) {
    if (start->count("--port")) start_opts.api_port = start_port;
    return sm::server::start_daemon(start_opts);
  }

  // The innermost subcommand given (apps add, not apps) holds the connection flags.
  CLI::App* given = app.get_subcommands()[0];
  while (!given->get_subcommands().empty()) given = given->get_subcommands()[0];
  std::optional<int> port_flag;
  if (given->count("--api-port")) port_flag = api_port;
  if (int code = sm::cli::connection_options(port_flag, remotes, cacert, deploy->parsed(), client, std::cerr))
    return code;
  client.tty = isatty(STDOUT_FILENO) == 1;
  if (*reload) return sm::cli::reload_command(client, std::cout, std::cerr);
  if (*apps_add) return sm::cli::apps_add_command(client, server_config, addition, std::cout, std::cerr);
  if (*apps_remove) return sm::cli::apps_remove_command(client, server_config, remove_name, std::cout, std::cerr);
  if (*apps) return sm::cli::apps_list_command(client, std::cout, std::cerr);
  const bool scoped =
      *deploy || *rollback || *promote || *restart || *cancel || *logs || *history || *status || *run || *maintenance ||
      *pause || *resume;
  if (scoped && !(*deploy && remotes.size() > 1)) {
    if (int code = sm::cli::choose_app(client, given->count("--app") ? std::optional(app_name) : std::nullopt,
                                       static_cast<bool>(*status), std::cerr))
      return code;
  }
  if (*deploy && remotes.size() > 1)
    return sm::cli::deploy_to_each(client, remotes, deploy->count("COMMIT") ? std::optional(commit) : std::nullopt,
                                   std::cout, std::cerr);
  if (*deploy)
    return sm::cli::deploy_command(client, deploy->count("COMMIT") ? std::optional(commit) : std::nullopt,
                                   std::cout, std::cerr);
  if (*rollback) return sm::cli::rollback_command(client, std::cout, std::cerr);
  if (*promote) return sm::cli::promote_command(client, std::cout, std::cerr);
  if (*restart) return sm::cli::restart_command(client, std::cout, std::cerr);
  if (*cancel) return sm::cli::cancel_command(client, std::cout, std::cerr);
  if (*upgrade) return sm::cli::upgrade_command(client, std::cout, std::cerr);
  if (*stop) return sm::cli::stop_command(client, stop_wait, std::cout, std::cerr);
  if (*logs) return sm::cli::logs_command(client, logs_slot, logs_worker, logs_cron, logs_n, logs_follow, std::cout, std::cerr);
  if (*history) return sm::cli::history_command(client, history_n, std::cout, std::cerr);
  if (*run && !run->remaining().empty()) {
    std::cerr << "slot-machine run: put the command after --, e.g. slot-machine run -- " << run->remaining().front()
              << " ...\n";
    return 2;
  }
  if (*run) return sm::cli::run_command(client, run_slot, run_argv, std::cout, std::cerr);
  if (*pause)
    return sm::cli::pause_command(client, pause->count("--timeout") ? std::optional(pause_timeout) : std::nullopt,
                                  std::cout, std::cerr);
  if (*resume) return sm::cli::resume_command(client, std::cout, std::cerr);
  if (*maintenance) {
    if (maintenance_state == "off" && (maintenance->count("--page") || maintenance->count("--retry-after"))) {
      std::cerr << "slot-machine maintenance off: --page and --retry-after go with `on`\n";
      return 2;
    }
    return sm::cli::maintenance_command(client, maintenance_state == "on", maintenance_page,
                                        maintenance->count("--retry-after") ? std::optional(maintenance_retry)
                                                                            : std::nullopt,
                                        std::cout, std::cerr);
  }
  if (client.all_apps) return sm::cli::status_all_command(client, std::cout, std::cerr);
  return sm::cli::status_command(client, std::cout, std::cerr);
}
