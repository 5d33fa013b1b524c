#include "log/log.h"

#include <unistd.h>

#include <ctime>

namespace sm::log {

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void write(const std::string& message) {
  std::string line = now_rfc3339() + " slot-machine: " + message + "\n";
  // One write(2) per line keeps lines whole when threads log at once.
  ssize_t rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void)rc;
}

}  // namespace sm::log
