#include "files/dir_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace sm::files {
namespace fs = std::filesystem;

namespace {

/// The descriptor an upgrade handed over, when it is open on `file`; else -1.
int inherited(const fs::path& file) {
  const char* v = std::getenv(DirLock::kLockFdVar);
  if (!v) return -1;
  char* end = nullptr;
  const long fd = std::strtol(v, &end, 10);
  unsetenv(DirLock::kLockFdVar);  // not for the apps, nor for a later upgrade's child
  if (end == v || *end || fd < 3 || fd > 65535) return -1;
  struct stat held {}, named {};
  if (fstat(static_cast<int>(fd), &held) != 0 || stat(file.c_str(), &named) != 0 ||
      held.st_dev != named.st_dev || held.st_ino != named.st_ino)
    return -1;
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return static_cast<int>(fd);
}

pid_t owner_named_in(int fd) {
  char buf[32] = {};
  const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  return n > 0 ? static_cast<pid_t>(std::atol(buf)) : 0;
}

}  // namespace

DirLock DirLock::acquire(const fs::path& dir) {
  const fs::path file = dir / "daemon.lock";
  int fd = inherited(file);
  if (fd < 0) fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error(fmt::format("cannot open {}: {}; pass --data DIR with a directory this user can write",
                                         file.string(), std::strerror(errno)));
  DirLock lock(fd);
  // A lock handed over by an upgrade is this same open file: taking it again succeeds.
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      const pid_t owner = owner_named_in(fd);
      throw Held(fmt::format("another slot-machine ({}) owns {}; stop it, or use --data DIR for a "
                             "second daemon", owner ? fmt::format("pid {}", owner) : "pid unknown",
                             dir.string()),
                 owner);
    }
    throw std::runtime_error(fmt::format("cannot lock {}: {}", file.string(), std::strerror(errno)));
  }
  const std::string pid = fmt::format("{}\n", getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    throw std::runtime_error(fmt::format("cannot write {}: {}", file.string(), std::strerror(errno)));
  return lock;
}

DirLock::~DirLock() {
  if (fd_ >= 0) close(fd_);  // the lock goes with the last descriptor of this open file
}

}  // namespace sm::files
