#include "process/process_group.h"

#include <dirent.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <unordered_map>
#include <unordered_set>

namespace sm::process {
namespace {

struct ProcInfo {
  pid_t ppid = 0;
  pid_t pgrp = 0;
  char state = '?';
};

/// Reads pid, ppid, pgrp and state of every process from /proc/<pid>/stat.
std::unordered_map<pid_t, ProcInfo> snapshot() {
  std::unordered_map<pid_t, ProcInfo> out;
  DIR* dir = opendir("/proc");
  if (!dir) return out;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    if (!std::getline(f, line)) continue;
    auto close = line.rfind(')');  // comm may contain spaces and parentheses
    if (close == std::string::npos || close + 2 >= line.size()) continue;
    ProcInfo info;
    int ppid = 0, pgrp = 0;
    if (std::sscanf(line.c_str() + close + 2, "%c %d %d", &info.state, &ppid, &pgrp) != 3)
      continue;
    info.ppid = ppid;
    info.pgrp = pgrp;
    out.emplace(static_cast<pid_t>(pid), info);
  }
  closedir(dir);
  return out;
}

/// Whether a zombie's thread group still has running threads: a multi-threaded process
/// whose main thread exited first shows 'Z' while the others still hold its descriptors
/// (a listening socket, say), so it is not gone yet.
bool threads_left(pid_t pid) {
  DIR* dir = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (!dir) return false;
  int n = 0;
  while (dirent* e = readdir(dir))
    if (e->d_name[0] != '.') ++n;
  closedir(dir);
  return n > 1;
}

bool alive(pid_t pid, char state) {
  if (state == 'X') return false;
  return state != 'Z' || threads_left(pid);
}
bool alive(pid_t pid, const ProcInfo& p) { return alive(pid, p.state); }

std::vector<pid_t> descendants_of(pid_t root, const std::unordered_map<pid_t, ProcInfo>& procs) {
  std::vector<pid_t> out;
  for (const auto& [pid, info] : procs) {
    pid_t p = info.ppid;
    for (int depth = 0; p > 1 && depth < 256; ++depth) {
      if (p == root) {
        if (alive(pid, info)) out.push_back(pid);
        break;
      }
      auto it = procs.find(p);
      if (it == procs.end()) break;
      p = it->second.ppid;
    }
  }
  return out;
}

/// The value of `key` in a process's environment ("" when absent or unreadable).
std::string environ_value(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string env((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::string prefix = key + "=";
  size_t pos = 0;
  while (pos < env.size()) {
    size_t end = env.find('\0', pos);
    if (end == std::string::npos) end = env.size();
    if (env.compare(pos, prefix.size(), prefix) == 0)
      return env.substr(pos + prefix.size(), end - pos - prefix.size());
    pos = end + 1;
  }
  return "";
}

}  // namespace

std::vector<pid_t> all_descendants() { return descendants_of(getpid(), snapshot()); }

std::vector<pid_t> members(const ProcessGroup& group) {
  auto procs = snapshot();
  std::vector<pid_t> out;
  if (group.adopted) {
    for (const auto& [pid, info] : procs)
      if (alive(pid, info) && !group.token.empty() && environ_value(pid, kRunTokenVar) == group.token)
        out.push_back(pid);
    return out;
  }
  for (pid_t pid : descendants_of(getpid(), procs)) {
    if (procs.at(pid).pgrp == group.leader ||
        (!group.token.empty() && environ_value(pid, kRunTokenVar) == group.token))
      out.push_back(pid);
  }
  return out;
}

bool is_alive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && alive(pid, line[close + 2]);
}

std::map<std::string, std::vector<pid_t>> processes_by_token_prefix(const std::string& prefix) {
  std::map<std::string, std::vector<pid_t>> out;
  for (const auto& [pid, info] : snapshot()) {
    if (!alive(pid, info) || pid == getpid()) continue;
    std::string token = environ_value(pid, kRunTokenVar);
    if (!token.empty() && token.compare(0, prefix.size(), prefix) == 0) out[token].push_back(pid);
  }
  return out;
}

void signal_group(const ProcessGroup& group, int sig) {
  if (group.leader > 0) kill(-group.leader, sig);
  for (pid_t pid : members(group)) kill(pid, sig);
}

}  // namespace sm::process
