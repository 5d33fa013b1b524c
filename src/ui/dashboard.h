#pragma once
// GET /ui/ (contract §11): the dashboard page, served from the binary, and what only it
// needs from the API: logins with a session cookie, the event stream as Server-Sent
// Events, and the revisions it offers to deploy.

#include <atomic>
#include <optional>
#include <string>

#include "app/app.h"
#include "git/git.h"
#include "ui/sessions.h"

namespace httplib {
class Server;
struct Request;
}

namespace sm::ui {

/// The browser's streams of events that may be open at once; each holds an API thread.
inline constexpr int kMaxEventFeeds = 4;
/// The session cookie's name.
inline constexpr const char* kCookie = "sm_session";

/// Dashboard serves the page and its endpoints for one daemon. Its own Repository (not
/// the daemon's) lists revisions, so a listing never waits for a deploy.
class Dashboard {
 public:
  /// `token`: the API token when one is set (then the page asks to log in); `https`: the
  /// API is served over TLS (the cookie is then Secure).
  Dashboard(app::App& daemon, git::Repository repo, std::optional<std::string> token, bool https);

  /// GET /ui, /ui/ and its assets, GET /ui/session, POST /ui/login and /ui/logout,
  /// GET /events (SSE), GET /revisions, GET /commits/<rev>. Streams end when `stopping`.
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
  std::string render_index(std::string_view page, const std::optional<app::Status>& status);
  app::App& app_;
  git::Repository repo_;
  std::optional<std::string> token_;
  bool https_;
  Sessions sessions_;
  std::atomic<int> feeds_{0};
};

}  // namespace sm::ui
