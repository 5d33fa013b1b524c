#pragma once
// What the proxy does with a request when several apps share it (contract §13), decided
// from the request's Host and target alone: refuse it (400), say no app has that host
// (404), send the client to the app's canonical host (308), or forward it to an app
// with the path the app sees (its prefix stripped) and X-Forwarded-Prefix. Pure and
// immutable once built, so every event loop shares one (a reload builds a new one).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hosts/table.h"

namespace sm::hosts {

/// An app as routing sees it.
struct AppRoutes {
  std::string name;
  std::vector<Pattern> hosts;
  bool strip_prefix = true;
  std::string canonical_host;  // "" or one of `hosts` (exact, no prefix)
  uint64_t max_request_body = 0;  // bytes (contract §15); 0: no limit
  std::vector<std::string> compress;  // codings for its answers, best first (contract §15)
};

struct Decision {
  enum class Kind { BadRequest, NotFound, Redirect, Forward };
  Kind kind = Kind::NotFound;
  std::string app;     // Redirect, Forward
  size_t index = 0;    // Redirect, Forward: the app's place in the list the router was built from
  std::string target;  // Forward: the target the app sees; Redirect: the Location
  std::string prefix;  // Forward: the matched prefix when stripped (X-Forwarded-Prefix), else ""
  std::string why;     // BadRequest, NotFound: one line for the answer's body
};

class Router {
 public:
  /// Throws BadPattern when a host (with its prefix) is in two apps.
  explicit Router(std::vector<AppRoutes> apps);

  /// The request with `host_header` (the Host field; several of them are the caller's
  /// 400) and `target` (origin-form "/p?q", absolute-form "http://h/p", or "*"), on a
  /// TLS connection or not (the scheme of a redirect).
  Decision decide(std::string_view host_header, std::string_view target, bool tls) const;

  /// The app (its index) a connection whose TLS server name is `server_name` belongs to;
  /// nullopt for a name no app has, or one that is not a host name.
  std::optional<size_t> app_of_server_name(std::string_view server_name) const;

  /// The apps, in the order given.
  const std::vector<AppRoutes>& apps() const { return apps_; }

 private:
  std::vector<AppRoutes> apps_;
  Table table_;
};

}  // namespace sm::hosts
