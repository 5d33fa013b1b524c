#include "log/log.h"

#include <unistd.h>

#include <ctime>

namespace sm::log {

std::string now_rfc3339() { return rfc3339(std::time(nullptr)); }

std::string rfc3339(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<std::time_t> parse_rfc3339(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end != '\0') return std::nullopt;
  return timegm(&tm);
}

long long seconds_since(const std::string& rfc3339) {
  const auto t = parse_rfc3339(rfc3339);
  if (!t) return 0;
  const long long d = static_cast<long long>(std::time(nullptr)) - static_cast<long long>(*t);
  return d > 0 ? d : 0;
}

namespace {
thread_local std::string scope_app;  // the app this thread's lines name ("": none)
}  // namespace

Scope::Scope(const std::string& app) : previous_(std::move(scope_app)) { scope_app = app; }
Scope::~Scope() { scope_app = std::move(previous_); }

void write(const std::string& message) {
  std::string line = now_rfc3339() + " slot-machine: " + (scope_app.empty() ? "" : "app " + scope_app + ": ") +
                     message + "\n";
  // One write(2) per line keeps lines whole when threads log at once.
  ssize_t rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void)rc;
}

}  // namespace sm::log
