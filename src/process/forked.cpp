#include "process/forked.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <stdexcept>

namespace sm::process {
namespace {

constexpr int kResultFd = 3;  // the child's end of the pipe, after every other fd is closed

[[noreturn]] void child_main(pid_t parent, int write_fd, const std::function<void()>& work) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(111);  // the daemon died before the line above
  if (write_fd != kResultFd) {
    dup2(write_fd, kResultFd);
    close(write_fd);
  }
  close_range(kResultFd + 1, ~0U, 0);
  std::string error;
  try {
    work();
  } catch (const std::exception& e) {
    error = e.what();
    if (error.empty()) error = "failed";
  } catch (...) {
    error = "failed with an unknown exception";
  }
  for (size_t off = 0; off < error.size();) {
    const ssize_t n = write(kResultFd, error.data() + off, error.size() - off);
    if (n <= 0 && errno != EINTR) break;
    if (n > 0) off += static_cast<size_t>(n);
  }
  _exit(error.empty() ? 0 : 1);
}

}  // namespace

ForkedResult run_forked(Reaper& reaper, const std::function<void()>& work,
                        const std::function<bool()>& stop) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(fmt::format("cannot make a pipe: {}", std::strerror(errno)));
  const pid_t parent = getpid();
  const pid_t pid = reaper.spawn_watched([&] {
    const pid_t p = fork();
    if (p == 0) child_main(parent, fds[1], work);
    return p;
  });
  close(fds[1]);
  if (pid < 0) {
    const int err = errno;
    close(fds[0]);
    throw std::runtime_error(fmt::format("cannot fork: {}", std::strerror(err)));
  }

  ForkedResult out;
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

}  // namespace sm::process
