#include "process/port_owner.h"

#include <unistd.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace sm::process {
namespace fs = std::filesystem;

namespace {

/// Inodes of the sockets listening on `port` in one /proc/net/tcp* table.
void listening_inodes(const char* table, int port, std::set<std::string>& inodes) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string slot, local, remote, state, queues, timer, retr, uid, timeout, inode;
    if (!(s >> slot >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode)) continue;
    const auto colon = local.rfind(':');
    if (state != "0A" || colon == std::string::npos) continue;  // 0A: LISTEN
    if (std::stoi(local.substr(colon + 1), nullptr, 16) == port && inode != "0") inodes.insert(inode);
  }
}

std::string first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

/// The value after --data in /proc/PID/cmdline, "" when absent.
std::string data_argument(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/cmdline", pid));
  std::string arg;
  bool next = false;
  while (std::getline(in, arg, '\0')) {
    if (next) return arg;
    next = arg == "--data";
  }
  return "";
}

}  // namespace

std::vector<DaemonProcess> daemon_processes() {
  std::vector<DaemonProcess> found;
  std::error_code ec;
  for (const auto& proc : fs::directory_iterator("/proc", ec)) {
    const std::string pid = proc.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos || std::stol(pid) == getpid()) continue;
    std::ifstream in(proc.path() / "cmdline");
    std::string argv0, argv1;
    if (!std::getline(in, argv0, '\0') || !std::getline(in, argv1, '\0') || argv1 != "start") continue;
    if (fs::path(argv0).filename() != "slot-machine") continue;
    DaemonProcess d{static_cast<pid_t>(std::stol(pid)), {}, {}};
    for (std::string arg; std::getline(in, arg, '\0');) d.args.push_back(arg);
    std::error_code cwd_ec;
    d.cwd = fs::read_symlink(proc.path() / "cwd", cwd_ec);
    if (!cwd_ec) found.push_back(std::move(d));
  }
  return found;
}

std::optional<PortOwner> port_owner(int port) {
  std::set<std::string> inodes;
  listening_inodes("/proc/net/tcp", port, inodes);
  listening_inodes("/proc/net/tcp6", port, inodes);
  if (inodes.empty()) return std::nullopt;
  std::error_code ec;
  for (const auto& proc : fs::directory_iterator("/proc", ec)) {
    const std::string pid = proc.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code fd_ec;
    for (const auto& fd : fs::directory_iterator(proc.path() / "fd", fd_ec)) {
      std::error_code link_ec;
      const std::string target = fs::read_symlink(fd.path(), link_ec).string();
      if (link_ec || !target.starts_with("socket:[")) continue;
      if (inodes.count(target.substr(8, target.size() - 9))) {
        PortOwner o{static_cast<pid_t>(std::stol(pid)), first_line(proc.path() / "comm"), ""};
        if (o.name == "slot-machine") o.data = data_argument(o.pid);
        return o;
      }
    }
  }
  return std::nullopt;
}

std::string describe(const PortOwner& o) {
  if (o.name == "slot-machine")
    return o.data.empty() ? fmt::format("another slot-machine (pid {})", o.pid)
                          : fmt::format("another slot-machine (pid {}, --data {})", o.pid, o.data);
  return fmt::format("{} (pid {})", o.name, o.pid);
}

}  // namespace sm::process
