#include "api/params.h"

#include <fmt/format.h>

#include <cstdlib>

#include "api/http_server.h"

namespace sm::api {

bool count_param(const httplib::Request& req, httplib::Response& res, const char* name, size_t fallback, long lo,
                 long hi, size_t& out) {
  out = fallback;
  if (!req.has_param(name)) return true;
  const std::string v = req.get_param_value(name);
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n < lo || n > hi) {
    reply(res, 400, {{"error", fmt::format("{} must be a whole number from {} to {}, got \"{}\"", name, lo, hi, v)}});
    return false;
  }
  out = static_cast<size_t>(n);
  return true;
}

}  // namespace sm::api
