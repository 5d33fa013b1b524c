#include "process/reaper.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

namespace sm::process {

void block_daemon_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGPIPE);
  sigaddset(&set, SIGUSR2);           // upgrade, waited for by main
  sigaddset(&set, interrupt_signal());  // only the thread it is meant for unblocks it
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Reaper::Reaper() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    throw std::runtime_error(fmt::format("cannot become child subreaper: {}", strerror(errno)));
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal_fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (signal_fd_ < 0 || stop_fd_ < 0)
    throw std::runtime_error(fmt::format("cannot set up the reaper: {}", strerror(errno)));
  thread_ = std::thread([this] { run(); });
}

Reaper::~Reaper() {
  uint64_t one = 1;
  ssize_t rc = ::write(stop_fd_, &one, sizeof one);
  (void)rc;
  thread_.join();
  reap_all();
  close(signal_fd_);
  close(stop_fd_);
}

void Reaper::run() {
  pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  reap_all();  // children that exited before the thread started
  for (;;) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents & POLLIN) return;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info;
      while (read(signal_fd_, &info, sizeof info) == sizeof info) {
      }
      reap_all();
    }
  }
}

void Reaper::reap_all() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
    if (pid <= 0) return;
    std::lock_guard lock(mu_);
    if (auto it = watched_.find(pid); it != watched_.end()) it->second = status;
    ++generation_;
    changed_.notify_all();
  }
}

pid_t Reaper::spawn_watched(const std::function<pid_t()>& spawn) {
  std::lock_guard lock(mu_);
  pid_t pid = spawn();
  if (pid > 0) watched_[pid] = std::nullopt;
  return pid;
}

std::optional<int> Reaper::exit_status(pid_t pid) const {
  std::lock_guard lock(mu_);
  auto it = watched_.find(pid);
  return it == watched_.end() ? std::nullopt : it->second;
}

void Reaper::forget(pid_t pid) {
  std::lock_guard lock(mu_);
  watched_.erase(pid);
}

uint64_t Reaper::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

void Reaper::wait_change(uint64_t seen, Clock::time_point deadline) const {
  std::unique_lock lock(mu_);
  changed_.wait_until(lock, deadline, [&] { return generation_ != seen; });
}

void Reaper::wake() {
  std::lock_guard lock(mu_);
  ++generation_;
  changed_.notify_all();
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("ended with wait status {}", status);
}

}  // namespace sm::process
