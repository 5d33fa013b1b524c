#pragma once
// The daemon's own log lines: one line each on stderr, timestamped.

#include <fmt/format.h>

#include <ctime>
#include <optional>
#include <string>

namespace sm::log {

/// Current UTC time as RFC 3339 with second precision ("2026-11-22T20:51:00Z").
std::string now_rfc3339();
/// `t` as RFC 3339, UTC, second precision.
std::string rfc3339(std::time_t t);

/// The time an rfc3339() text names; nullopt for anything else.
std::optional<std::time_t> parse_rfc3339(const std::string& text);
/// Whole seconds from a now_rfc3339() time until now (0 when unparsable or ahead).
long long seconds_since(const std::string& rfc3339);

/// Writes "<time> slot-machine: <message>" to stderr atomically; "<time> slot-machine:
/// app NAME: <message>" while the writing thread is in a Scope.
void write(const std::string& message);

/// While it lives, the lines this thread writes name the app it works for (one of a
/// server's several apps, contract §13). Scopes nest; "" names none.
class Scope {
 public:
  explicit Scope(const std::string& app);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  std::string previous_;
};

template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  write(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace sm::log
