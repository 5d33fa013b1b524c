#include "service/sd_notify.h"

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

#include <mutex>

namespace sm::service {
namespace {

std::mutex mu;
std::string last_status;

void send(const std::string& message) {
  // sd_notify reads NOTIFY_SOCKET each time; <0 is an error, 0 means not under systemd.
  sd_notify(0, message.c_str());
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

void notify_ready(const std::string& status) {
  std::lock_guard lock(mu);
  last_status = one_line(status);
  send(fmt::format("READY=1\nSTATUS={}", last_status));
}

void notify_status(const std::string& line) {
  std::lock_guard lock(mu);
  if (one_line(line) == last_status) return;
  last_status = one_line(line);
  send("STATUS=" + last_status);
}

void notify_reloading() {
  std::lock_guard lock(mu);
  last_status = "upgrading the daemon";
  send("RELOADING=1\nSTATUS=" + last_status);
}

void notify_new_main(pid_t pid, const std::string& status) {
  std::lock_guard lock(mu);
  last_status = one_line(status);
  send(fmt::format("MAINPID={}\nREADY=1\nSTATUS={}", pid, last_status));
}

void notify_stopping() {
  std::lock_guard lock(mu);
  send("STOPPING=1\nSTATUS=stopping");
}

}  // namespace sm::service
