#pragma once
// Query parameters the API reads (?limit, ?skip, ?tail), checked with a 400 that names them.

#include <cstddef>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace sm::api {

/// Reads the query parameter `name` as a whole number in [lo, hi] (`fallback` when
/// absent) into `out`; otherwise answers 400 naming it and returns false.
bool count_param(const httplib::Request& req, httplib::Response& res, const char* name, size_t fallback, long lo,
                 long hi, size_t& out);

}  // namespace sm::api
