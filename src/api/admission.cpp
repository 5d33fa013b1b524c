#include "api/admission.h"

#include <fmt/format.h>

#include "api/http_server.h"
#include "edge/api_token.h"
#include "ui/dashboard.h"
#include "ui/sessions.h"

namespace sm::api {

bool admit(const Admission& a, const httplib::Request& req, httplib::Response& res) {
  // A browser says where a request comes from; the CLI and scripts send no Origin. A
  // POST from another site's page is refused whatever it carries (cross-site request
  // forgery, also against a token-less daemon on loopback).
  if (req.method != "GET" && req.method != "HEAD" &&
      !ui::same_origin(req.get_header_value("Origin"), req.get_header_value("Host"), a.scheme)) {
    reply(res, 403, {{"error", fmt::format("cross-origin request refused: Origin {} is not this API ({}://{})",
                                           req.get_header_value("Origin"), a.scheme, req.get_header_value("Host"))}});
    return false;
  }
  if (!a.token) return true;
  if (req.method == "GET" && req.path == "/") return true;  // liveness
  if (a.dashboard && ui::Dashboard::is_open(req)) return true;
  if (edge::bearer_matches(req.get_header_value("Authorization"), *a.token)) return true;
  if (a.dashboard && !req.has_header("Authorization")) {
    std::string why;
    switch (a.dashboard->access(req, why)) {
      case ui::Dashboard::Access::Allowed: return true;
      case ui::Dashboard::Access::Forbidden: reply(res, 403, {{"error", why}}); return false;
      case ui::Dashboard::Access::None: break;
    }
  }
  res.set_header("WWW-Authenticate", "Bearer realm=\"slot-machine\"");
  reply(res, 401, {{"error", req.has_header("Authorization")
                                 ? "the API token is wrong"
                                 : "this API needs a token: send Authorization: Bearer <token> "
                                   "(the CLI sends $SLOT_MACHINE_API_TOKEN or the config's "
                                   "api_token_file), or log in at /ui/"}});
  return false;
}

}  // namespace sm::api
