#pragma once
// The data directory's owner: one daemon at a time. A second daemon on the same data
// directory would adopt the first one's apps and kill them when it stops.

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace sm::files {

/// An exclusive flock(2) on <dir>/daemon.lock, held for as long as this object lives
/// (or the open file description does: a successor started by an upgrade inherits it
/// through kLockFdVar and the lock never lapses). The file holds the owner's pid.
class DirLock {
 public:
  /// The variable that passes the held lock's descriptor to an upgrade's new daemon.
  static constexpr const char* kLockFdVar = "SLOT_MACHINE_LOCK_FD";

  /// Takes the lock on `dir` (which must exist), or the one handed over in kLockFdVar
  /// when it is this directory's (the variable is removed either way). Throws Held when
  /// another process holds it, std::runtime_error when the file cannot be opened.
  static DirLock acquire(const std::filesystem::path& dir);

  /// Another process owns the directory.
  struct Held : std::runtime_error {
    Held(const std::string& what, pid_t owner) : std::runtime_error(what), owner(owner) {}
    pid_t owner;  // 0 when the file names none
  };

  DirLock(DirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  DirLock& operator=(DirLock&&) = delete;
  ~DirLock();

  /// The descriptor to hand to an upgrade's new daemon.
  int fd() const { return fd_; }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace sm::files
