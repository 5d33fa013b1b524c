#pragma once
// The upgrade hand-over between two daemon processes: the old one starts the binary now
// at its executable path with every listening socket passed as LISTEN_FDS (as systemd
// passes them) plus a channel; the new one says on the channel when it serves, then
// waits for the old one to stop accepting API connections before it starts to.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "process/reaper.h"

namespace sm::service {

/// Why a new daemon could not take over; the old one keeps serving.
struct UpgradeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A listening socket to hand over, with its LISTEN_FDNAMES name.
struct HandedSocket {
  std::string name;
  int fd = -1;
};

/// The executable this process runs, as a path ("/usr/bin/slot-machine"), read once
/// at start-up: after a package upgrade replaced the file, the path names the new one.
std::string own_executable();

/// The old daemon's side: a newer daemon started on the same sockets.
class Successor {
 public:
  /// Starts `exe args...` with `sockets` and the channel, then waits up to `timeout`
  /// for it to say it serves. Throws UpgradeError with the reason: the file is missing
  /// or not executable, it exited (with its own error message when it sent one), or it
  /// did not get ready in time (then it is killed). `lock_fd` (the data directory's
  /// lock, files::DirLock) is passed on too, so the lock never lapses.
  static Successor start(const std::string& exe, const std::vector<std::string>& args,
                         const std::vector<HandedSocket>& sockets, int lock_fd, process::Reaper& reaper,
                         std::chrono::milliseconds timeout);
  Successor(Successor&& other) noexcept;
  Successor& operator=(Successor&&) = delete;
  ~Successor();

  pid_t pid() const { return pid_; }
  const std::string& version() const { return version_; }
  /// Tells it the old daemon no longer accepts API connections: it may now.
  void go();

 private:
  Successor(pid_t pid, std::string version, int channel)
      : pid_(pid), version_(std::move(version)), channel_(channel) {}
  pid_t pid_;
  std::string version_;
  int channel_;
};

/// The new daemon's side, when an upgrade started it (SLOT_MACHINE_UPGRADE_FD).
class Predecessor {
 public:
  /// The channel from the environment (the variable is removed); nullopt when this
  /// daemon was not started by an upgrade.
  static std::optional<Predecessor> from_environment();
  Predecessor(Predecessor&& other) noexcept;
  Predecessor& operator=(Predecessor&&) = delete;
  ~Predecessor();

  /// This daemon serves (state restored, apps adopted).
  void ready(const std::string& version);
  /// This daemon cannot start; `why` becomes the old daemon's 500 answer.
  void failed(const std::string& why);
  /// Waits until the old daemon stopped accepting API connections, it has gone, or
  /// `timeout` passed.
  void wait_go(std::chrono::milliseconds timeout);

 private:
  explicit Predecessor(int fd) : fd_(fd) {}
  int fd_;
};

/// The environment variable that carries the channel's descriptor.
inline constexpr const char* kUpgradeFdVar = "SLOT_MACHINE_UPGRADE_FD";

}  // namespace sm::service
