#pragma once
// Who may use the API (contract §8): a POST from another origin is refused (403); with a
// token, every request but GET / and the dashboard's open pages needs it or a dashboard
// session (401, or 403 for a session's POST without its CSRF token).

#include <optional>
#include <string>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace sm::ui {
class Dashboard;
}

namespace sm::api {

struct Admission {
  std::optional<std::string> token;  // none: no token needed
  std::string scheme;                // "http" or "https": what a browser's Origin must say
  ui::Dashboard* dashboard = nullptr;  // its logins may use the API
};

/// Whether `req` may go on; answers the refusals itself.
bool admit(const Admission& a, const httplib::Request& req, httplib::Response& res);

}  // namespace sm::api
