#include "process/spawn.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <vector>

extern char** environ;

namespace sm::process {
namespace {

std::string new_token(const std::string& prefix) {
  static std::atomic<unsigned> counter{0};
  return fmt::format("{}{}-{}", prefix, getpid(), ++counter);
}

/// posix_spawn attributes and file actions, freed on every path.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnSetup() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

}  // namespace

std::map<std::string, std::string> current_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (!eq) continue;
    env[std::string(*e, static_cast<size_t>(eq - *e))] = eq + 1;
  }
  return env;
}

ProcessGroup spawn(Reaper& reaper, const SpawnSpec& spec) {
  ProcessGroup group;
  group.token = new_token(spec.token_prefix);

  std::vector<std::string> env_strings;
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  env_strings.push_back(std::string(kRunTokenVar) + "=" + group.token);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  std::string sh = "/bin/sh", dash_c = "-c", command = spec.command;
  std::vector<std::string> words{sh, dash_c, command};
  if (spec.uid >= 0)  // another user: setpriv changes it, then execs the shell
    words.insert(words.begin(), {"/usr/bin/setpriv", fmt::format("--reuid={}", spec.uid),
                                 fmt::format("--regid={}", spec.gid), "--init-groups", "--"});
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);

  SpawnSetup s;
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  // A session of its own (so also a process group whose id is its pid): when the daemon
  // dies, the group is not "newly orphaned", so the kernel does not SIGHUP it, which it
  // would if a member were stopped (a frozen standby).
  posix_spawnattr_setflags(&s.attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setsigmask(&s.attr, &none);
  posix_spawnattr_setsigdefault(&s.attr, &all);

  posix_spawn_file_actions_addopen(&s.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&s.actions, 1, spec.log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&s.actions, 1, 2);
  posix_spawn_file_actions_addclosefrom_np(&s.actions, 3);
  posix_spawn_file_actions_addchdir_np(&s.actions, spec.cwd.c_str());

  int err = 0;
  pid_t pid = reaper.spawn_watched([&] {
    pid_t child = -1;
    err = posix_spawn(&child, argv[0], &s.actions, &s.attr, argv.data(), envp.data());
    return err == 0 ? child : -1;
  });
  if (pid < 0)
    throw SpawnError(fmt::format("cannot start `{}` in {}: {}", spec.command, spec.cwd.string(),
                                 strerror(err)));
  group.leader = pid;
  return group;
}

}  // namespace sm::process
