#include "process/worker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "process/signal_safe.h"

extern char** environ;

namespace sm::process {

WorkerResult run_worker(Reaper& reaper, const std::vector<std::string>& args,
                        const std::function<bool()>& stop) {
  // Everything the child needs is made here, before the fork.
  std::vector<std::string> strings{"slot-machine"};
  strings.insert(strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(fmt::format("cannot make a pipe: {}", std::strerror(errno)));
  const pid_t parent = getpid();
  const pid_t pid = reaper.spawn_watched([&] {
    const pid_t p = fork();
    if (p != 0) return p;  // parent (or -1)
    // The child: system calls only until execve.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(111);  // the daemon died before the line above
    // dup2 clears O_CLOEXEC on the copy; when the pipe already is that fd, clear it here.
    if (fds[1] == kWorkerResultFd ? fcntl(fds[1], F_SETFD, 0) < 0 : dup2(fds[1], kWorkerResultFd) < 0)
      _exit(112);
    close_range(kWorkerResultFd + 1, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    execve("/proc/self/exe", argv.data(), environ);
    char msg[96] = "cannot execute /proc/self/exe (the daemon's own binary): errno ";
    const char* end = put_decimal(msg + std::strlen(msg), errno);
    (void)!write(kWorkerResultFd, msg, static_cast<size_t>(end - msg));
    _exit(127);
  });
  close(fds[1]);
  if (pid < 0) {
    const int err = errno;
    close(fds[0]);
    throw std::runtime_error(fmt::format("cannot fork: {}", std::strerror(err)));
  }

  WorkerResult out;
  std::string message;
  for (bool open = true; open;) {
    if (stop && stop()) {
      kill(pid, SIGKILL);
      out.stopped = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0) message.append(buf, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR) open = false;
  }
  close(fds[0]);
  std::optional<int> status;
  while (!(status = reaper.exit_status(pid))) reaper.wait_change(reaper.generation(), Clock::now() + std::chrono::milliseconds(100));
  reaper.forget(pid);
  if (out.stopped) return out;
  if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) return out;
  out.error = !message.empty() ? message : fmt::format("the process {}", describe_exit(*status));
  return out;
}

void finish_worker(const std::string& error) {
  for (size_t off = 0; off < error.size();) {
    const ssize_t n = write(kWorkerResultFd, error.data() + off, error.size() - off);
    if (n <= 0 && errno != EINTR) break;
    if (n > 0) off += static_cast<size_t>(n);
  }
  _exit(error.empty() ? 0 : 1);
}

}  // namespace sm::process
