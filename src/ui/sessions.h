#pragma once
// Dashboard logins (contract §11): who typed the API token into the login form. Each
// login gets a random session id (the cookie) and a random CSRF token that the page sends
// back in a header with every POST. Kept in memory: a restarted daemon forgets them.

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace sm::ui {

/// Session ids and their CSRF tokens, valid for `ttl` from login; at most `max` at once
/// (the oldest goes first). Thread-safe.
class Sessions {
 public:
  using Clock = std::chrono::steady_clock;
  struct Login {
    std::string id;    // the cookie's value: 64 hex digits from OpenSSL's RAND_bytes
    std::string csrf;  // what the page must send as X-CSRF-Token: 64 hex digits
  };
  explicit Sessions(std::chrono::seconds ttl = std::chrono::hours(12), size_t max = 64)
      : ttl_(ttl), max_(max) {}

  Login create(Clock::time_point now = Clock::now());
  /// The CSRF token of session `id` when it exists and has not expired.
  std::optional<std::string> csrf_of(const std::string& id, Clock::time_point now = Clock::now());
  void remove(const std::string& id);

 private:
  struct Entry {
    std::string csrf;
    Clock::time_point expires, created;
  };
  const std::chrono::seconds ttl_;
  const size_t max_;
  std::mutex mu_;
  std::map<std::string, Entry> by_id_;
};

/// The value of cookie `name` in a Cookie header ("" when absent).
std::string cookie_value(const std::string& header, const std::string& name);

/// Whether an Origin header names the same origin as the request's Host (scheme `scheme`);
/// an absent Origin (same-origin GETs, older browsers) passes, "null" does not.
bool same_origin(const std::string& origin, const std::string& host, const std::string& scheme);

}  // namespace sm::ui
