#include "service/upgrade.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>
#include <thread>

#include "files/dir_lock.h"
#include "process/signal_safe.h"

extern char** environ;

namespace sm::service {
namespace {

using Clock = std::chrono::steady_clock;
using process::put_decimal;

bool is_service_var(const char* entry) {
  for (const char* name : {"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=", "SLOT_MACHINE_UPGRADE_FD=",
                           "SLOT_MACHINE_LOCK_FD="})
    if (std::strncmp(entry, name, std::strlen(name)) == 0) return true;
  return false;
}

/// Reads one line from `fd` within `deadline`: the line, "" on EOF, nullopt on timeout.
std::optional<std::string> read_line(int fd, Clock::time_point deadline, std::string& buffered) {
  for (;;) {
    if (auto nl = buffered.find('\n'); nl != std::string::npos) {
      std::string line = buffered.substr(0, nl);
      buffered.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (r < 0 && errno != EINTR) return "";
    if (r <= 0) continue;
    char buf[512];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "";
    buffered.append(buf, static_cast<size_t>(n));
  }
}

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the other side has gone: nothing to tell
    off += static_cast<size_t>(n);
  }
}

}  // namespace

std::string own_executable() {
  static const std::string path = [] {
    std::error_code ec;
    std::string p = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    const std::string deleted = " (deleted)";
    if (p.ends_with(deleted)) p.resize(p.size() - deleted.size());
    return p;
  }();
  return path;
}

Successor Successor::start(const std::string& exe, const std::vector<std::string>& args,
                           const std::vector<HandedSocket>& sockets, int lock_fd, process::Reaper& reaper,
                           std::chrono::milliseconds timeout) {
  if (access(exe.c_str(), X_OK) != 0)
    throw UpgradeError(fmt::format("cannot run the new binary {}: {}; install it there (and "
                                   "make it executable), then upgrade again",
                                   exe, std::strerror(errno)));
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    throw UpgradeError(fmt::format("cannot create the upgrade channel: {}", std::strerror(errno)));
  struct Closer {
    int& fd;
    ~Closer() {
      if (fd >= 0) close(fd);
    }
  } keep{pair[0]}, give{pair[1]};

  // Everything the child needs is built here: after fork it may only call
  // async-signal-safe functions. Each socket is first copied above the range it must
  // land in (3, 4, ...), so the child's dup2 calls cannot overwrite one another.
  const int n = static_cast<int>(sockets.size());
  std::vector<int> high;
  struct HighCloser {
    std::vector<int>& fds;
    ~HighCloser() {
      for (int fd : fds) close(fd);
    }
  } high_closer{high};
  for (const auto& s : sockets) {
    const int fd = fcntl(s.fd, F_DUPFD_CLOEXEC, 64);
    if (fd < 0) throw UpgradeError(fmt::format("cannot pass the {} socket: {}", s.name, std::strerror(errno)));
    high.push_back(fd);
  }
  const int channel_high = fcntl(pair[1], F_DUPFD_CLOEXEC, 64);
  if (channel_high < 0) throw UpgradeError(fmt::format("cannot pass the upgrade channel: {}", std::strerror(errno)));
  high.push_back(channel_high);
  const int lock_high = lock_fd >= 0 ? fcntl(lock_fd, F_DUPFD_CLOEXEC, 64) : -1;
  if (lock_fd >= 0 && lock_high < 0)
    throw UpgradeError(fmt::format("cannot pass the data directory's lock: {}", std::strerror(errno)));
  if (lock_high >= 0) high.push_back(lock_high);

  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e)
    if (!is_service_var(*e)) env.emplace_back(*e);
  std::string names;
  for (const auto& s : sockets) names += (names.empty() ? "" : ":") + s.name;
  env.push_back(fmt::format("LISTEN_FDS={}", n));
  env.push_back("LISTEN_FDNAMES=" + names);
  env.push_back(fmt::format("{}={}", kUpgradeFdVar, 3 + n));
  if (lock_high >= 0) env.push_back(fmt::format("{}={}", files::DirLock::kLockFdVar, 4 + n));
  env.push_back("LISTEN_PID=" + std::string(24, '\0'));  // the child writes its pid here
  std::vector<char*> envp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  char* pid_slot = env.back().data() + std::strlen("LISTEN_PID=");
  std::vector<std::string> argv_strings{exe};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  const char* path = exe.c_str();

  const pid_t pid = reaper.spawn_watched([&] {
    const pid_t child = fork();
    if (child != 0) return child;  // parent (or -1)
    for (int i = 0; i < n; ++i) dup2(high[static_cast<size_t>(i)], 3 + i);
    dup2(channel_high, 3 + n);
    if (lock_high >= 0) dup2(lock_high, 4 + n);
    close_range(static_cast<unsigned>(lock_high >= 0 ? 5 + n : 4 + n), ~0U, 0);
    put_decimal(pid_slot, getpid());
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    execve(path, argv.data(), envp.data());
    char msg[96] = "error cannot execute the new binary: errno ";
    char* end = put_decimal(msg + std::strlen(msg), errno);
    *end++ = '\n';
    (void)!write(3 + n, msg, static_cast<size_t>(end - msg));
    _exit(127);
  });
  if (pid < 0) throw UpgradeError(fmt::format("cannot fork the new daemon: {}", std::strerror(errno)));
  // Only the child may hold the channel's other end now: its exit must read as EOF.
  close(pair[1]);
  pair[1] = -1;
  for (int fd : high) close(fd);
  high.clear();

  std::string buffered;
  const auto line = read_line(pair[0], Clock::now() + timeout, buffered);
  if (!line) {
    kill(pid, SIGKILL);  // not SIGTERM: that would make it stop the apps it adopted
    throw UpgradeError(fmt::format("the new daemon (pid {}) was not ready within {} ms; it "
                                   "was killed and this daemon keeps serving",
                                   pid, timeout.count()));
  }
  if (line->rfind("ready ", 0) == 0) {
    // "ready <pid> <version>"
    const std::string rest = line->substr(6);
    const auto sp = rest.find(' ');
    Successor s(pid, sp == std::string::npos ? "" : rest.substr(sp + 1), pair[0]);
    pair[0] = -1;
    return s;
  }
  std::string why;
  if (line->rfind("error ", 0) == 0) why = line->substr(6);
  if (const auto at = why.find("errno "); why.rfind("cannot execute", 0) == 0 && at != std::string::npos)
    why = fmt::format("cannot execute the new binary {}: {}", exe,
                      std::strerror(std::atoi(why.c_str() + at + 6)));
  // Its exit status, once the reaper has it.
  std::optional<int> status;
  for (int i = 0; i < 200 && !(status = reaper.exit_status(pid)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  reaper.forget(pid);
  const std::string how = status ? process::describe_exit(*status) : "closed the upgrade channel";
  throw UpgradeError(why.empty()
                         ? fmt::format("the new daemon (pid {}) {} before it was ready; see its "
                                       "log; this daemon keeps serving", pid, how)
                         : fmt::format("the new daemon (pid {}) {}: {}; this daemon keeps serving",
                                       pid, how, why));
}

Successor::Successor(Successor&& o) noexcept
    : pid_(o.pid_), version_(std::move(o.version_)), channel_(std::exchange(o.channel_, -1)) {}

Successor::~Successor() {
  if (channel_ >= 0) close(channel_);
}

void Successor::go() {
  write_all(channel_, "go\n");
  close(channel_);
  channel_ = -1;
}

std::optional<Predecessor> Predecessor::from_environment() {
  const char* v = std::getenv(kUpgradeFdVar);
  if (!v) return std::nullopt;
  char* end = nullptr;
  const long fd = std::strtol(v, &end, 10);
  unsetenv(kUpgradeFdVar);
  if (*end != '\0' || fd < 3 || fcntl(static_cast<int>(fd), F_GETFD) < 0) return std::nullopt;
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return Predecessor(static_cast<int>(fd));
}

Predecessor::Predecessor(Predecessor&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

Predecessor::~Predecessor() {
  if (fd_ >= 0) close(fd_);
}

void Predecessor::ready(const std::string& version) {
  write_all(fd_, fmt::format("ready {} {}\n", getpid(), version));
}

void Predecessor::failed(const std::string& why) {
  std::string line = why;
  for (char& c : line)
    if (c == '\n') c = ' ';
  write_all(fd_, "error " + line + "\n");
}

void Predecessor::wait_go(std::chrono::milliseconds timeout) {
  std::string buffered;
  read_line(fd_, Clock::now() + timeout, buffered);  // "go", EOF or timeout: all mean go on
  close(fd_);
  fd_ = -1;
}

}  // namespace sm::service
