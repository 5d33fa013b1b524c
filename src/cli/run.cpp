#include "cli/run.h"

#include <fmt/format.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "app/app.h"
#include "cli/client_http.h"
#include "log/json_text.h"

namespace sm::cli {
using nlohmann::json;

namespace {

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string user_name(int uid) {
  passwd pw{}, *found = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(static_cast<uid_t>(uid), &pw, buf.data(), buf.size(), &found) == 0 && found) return found->pw_name;
  return std::to_string(uid);
}

/// Runs the command on this terminal as the daemon said; returns its exit code, or -1
/// with `err` told why it could not start.
int run_attached(const json& place, const std::vector<std::string>& argv, std::ostream& err) {
  const int uid = place.value("uid", -1), gid = place.value("gid", -1);
  const bool other_user = uid >= 0 && static_cast<uid_t>(uid) != geteuid();
  if (other_user && geteuid() != 0) {
    err << fmt::format("slot-machine: this app runs as {} (uid {}); run this as root (sudo slot-machine run ...) "
                       "or as {}\n",
                       user_name(uid), uid, user_name(uid));
    return -1;
  }
  std::vector<std::string> env_text;
  for (const auto& [k, v] : place["env"].items())
    if (v.is_string()) env_text.push_back(k + "=" + v.get<std::string>());
  std::vector<char*> envp;
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  // exec: the shell becomes the command, so a signal reaches the command alone.
  std::vector<std::string> words{"/bin/sh", "-c", "exec " + app::shell_command(argv)};
  if (other_user)
    words.insert(words.begin(), {"/usr/bin/setpriv", fmt::format("--reuid={}", uid), fmt::format("--regid={}", gid),
                                 "--init-groups", "--"});
  std::vector<char*> args;
  for (auto& w : words) args.push_back(w.data());
  args.push_back(nullptr);
  const std::string cwd = place.value("cwd", "");

  // As system(3): the command gets the terminal's signals (Ctrl-C, Ctrl-\) itself, in
  // this process group; this process waits them out.
  struct sigaction ignore {}, old_int {}, old_quit {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGQUIT, &ignore, &old_quit);
  const pid_t pid = fork();
  if (pid == 0) {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    if (chdir(cwd.c_str()) != 0) {
      const std::string msg = fmt::format("slot-machine: cannot enter {}: {}\n", cwd, std::strerror(errno));
      (void)!write(STDERR_FILENO, msg.data(), msg.size());
      _exit(126);
    }
    execve(args[0], args.data(), envp.data());
    const std::string msg = fmt::format("slot-machine: cannot run {}: {}\n", args[0], std::strerror(errno));
    (void)!write(STDERR_FILENO, msg.data(), msg.size());
    _exit(127);
  }
  int status = 0;
  if (pid > 0)
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  if (pid < 0) {
    err << fmt::format("slot-machine: cannot start the command: {}\n", std::strerror(errno));
    return -1;
  }
  return exit_code_of(status);
}

}  // namespace

int run_command(const ClientOptions& o, const std::string& slot, const std::vector<std::string>& argv,
                std::ostream& out, std::ostream& err) {
  if (argv.empty() || argv.front().empty()) {
    err << "slot-machine run: give the command after --, e.g. slot-machine run -- rails console\n";
    return 2;
  }
  const std::string body = log::json_text(json{{"command", argv}, {"slot", slot}, {"attach", !o.remote}});
  if (o.remote) {
    int code = 1;
    bool ended = false;
    const Reply r = post_events(o, app_path(o, "/run"), body, 24 * 3600, [&](const json& e) {
      if (e.value("event", "") == "output") {
        out << e.value("line", "") << "\n" << std::flush;
      } else if (e.value("event", "") == "exit") {
        code = e.value("exit_code", 1);
        ended = true;
      }
    });
    if (r.status != 200) return answered_ok(o, r, "run", err) ? 0 : 1;
    if (!ended) {
      err << "slot-machine: the connection to the daemon ended before the command did; see `slot-machine "
             "history`\n";
      return 1;
    }
    return code;
  }
  const Reply place = call(o, "POST", app_path(o, "/run"), body, 30);
  if (!answered_ok(o, place, "run", err)) return 1;
  const int code = run_attached(place.body, argv, err);
  if (code < 0) return 1;
  const Reply done = call(o, "POST", app_path(o, "/run/done"),
                          log::json_text(json{{"run", place.body.value("run", 0ULL)}, {"exit_code", code}}), 10);
  if (done.status != 200)
    err << "slot-machine: warning: the daemon did not journal this run's exit ("
        << (done.failure.empty() ? done.body.value("error", "") : done.failure) << ")\n";
  return code;
}

}  // namespace sm::cli
