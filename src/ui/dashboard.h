#pragma once
// GET /ui/ (contract §11): the dashboard page, served from the binary, and what only it
// needs from the API: logins with a session cookie, the event stream as Server-Sent
// Events, and the revisions it offers to deploy. With several apps (contract §13) /ui/
// lists them and /ui/apps/NAME/ is each one's page, its endpoints under /apps/NAME/.

#include <atomic>
#include <optional>
#include <string>

#include "app/app.h"
#include "app/directory.h"
#include "git/git.h"
#include "ui/sessions.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace sm::ui {

/// The browser's streams of events that may be open at once; each holds an API thread.
inline constexpr int kMaxEventFeeds = 4;
/// The session cookie's name.
inline constexpr const char* kCookie = "sm_session";

/// Dashboard serves the pages and their endpoints for the apps of a Directory. It opens
/// an app's repository itself (not the App's) to list revisions, so a listing never waits
/// for a deploy.
class Dashboard {
 public:
  /// `token`: the API token when one is set (then the page asks to log in); `https`: the
  /// API is served over TLS (the cookie is then Secure).
  Dashboard(const app::Directory& apps, std::optional<std::string> token, bool https);

  /// GET /ui, /ui/ (the app's page, or the list of several apps), /ui/apps/NAME/ and the
  /// assets, GET /ui/session, POST /ui/login and /ui/logout, GET /events (SSE), GET
  /// /revisions, GET /commits/<rev> (the last three under /apps/NAME/ too). Streams end
  /// when `stopping`.
  void add_routes(httplib::Server& s, const std::atomic<bool>& stopping);

  /// What a session cookie allows a request that has no bearer token.
  enum class Access {
    None,       // no valid session: 401
    Allowed,    // a GET with a valid session, or a POST that also carries its CSRF token
    Forbidden,  // a valid session, but a POST without the CSRF token or from another origin: 403
  };
  Access access(const httplib::Request& req, std::string& why);

  /// Requests anyone may make: the page, its assets, whether a login is needed, logging in.
  static bool is_open(const httplib::Request& req);

 private:
  /// index.html with its @@placeholders@@ filled from `status` (the cards, the operation,
  /// the rollback button), or emptied and the dashboard hidden when it is nullopt (a
  /// visitor who must log in first).
  /// `base`: where the app's API routes are ("" for the only app, else /apps/NAME).
  std::string render_index(std::string_view page, const std::optional<app::Status>& status,
                           const app::Listed& app, const std::string& base);
  /// apps.html with a row per app, or none for a visitor who must log in first.
  std::string render_apps(std::string_view page, bool may_see);
  /// Serves the page of `name` (nullopt: the only app).
  void app_page(const httplib::Request& req, httplib::Response& res, const std::optional<std::string>& name);
  const app::Directory& apps_;
  std::optional<std::string> token_;
  bool https_;
  Sessions sessions_;
  std::atomic<int> feeds_{0};
};

}  // namespace sm::ui
