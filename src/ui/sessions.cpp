#include "ui/sessions.h"

#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

#include "edge/api_token.h"

namespace sm::ui {
namespace {

std::string random_hex() {
  unsigned char r[32];
  if (RAND_bytes(r, sizeof r) != 1) throw std::runtime_error("OpenSSL could not make random bytes for a session");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (unsigned char c : r) {
    s += kHex[c >> 4];
    s += kHex[c & 15];
  }
  return s;
}

}  // namespace

Sessions::Login Sessions::create(Clock::time_point now) {
  Login l{random_hex(), random_hex()};
  std::lock_guard lock(mu_);
  std::erase_if(by_id_, [&](const auto& kv) { return kv.second.expires <= now; });
  while (by_id_.size() >= max_) {
    auto oldest = std::min_element(by_id_.begin(), by_id_.end(), [](const auto& a, const auto& b) {
      return a.second.created < b.second.created;
    });
    by_id_.erase(oldest);
  }
  by_id_[l.id] = Entry{l.csrf, now + ttl_, now};
  return l;
}

std::optional<std::string> Sessions::csrf_of(const std::string& id, Clock::time_point now) {
  if (id.size() != 64) return std::nullopt;
  std::lock_guard lock(mu_);
  // Compared in constant time against each live session: a lookup by key would tell a
  // timing attacker how much of a guessed id matched.
  for (auto it = by_id_.begin(); it != by_id_.end(); ++it)
    if (edge::equal_constant_time(it->first, id)) {
      if (it->second.expires <= now) {
        by_id_.erase(it);
        return std::nullopt;
      }
      return it->second.csrf;
    }
  return std::nullopt;
}

void Sessions::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  by_id_.erase(id);
}

std::string cookie_value(const std::string& header, const std::string& name) {
  size_t from = 0;
  while (from < header.size()) {
    size_t end = header.find(';', from);
    if (end == std::string::npos) end = header.size();
    std::string item = header.substr(from, end - from);
    from = end + 1;
    item.erase(0, item.find_first_not_of(' '));
    if (item.size() > name.size() && item.compare(0, name.size(), name) == 0 && item[name.size()] == '=')
      return item.substr(name.size() + 1);
  }
  return "";
}

bool same_origin(const std::string& origin, const std::string& host, const std::string& scheme) {
  if (origin.empty()) return true;
  return origin == scheme + "://" + host;
}

}  // namespace sm::ui
