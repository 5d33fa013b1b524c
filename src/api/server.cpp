#include "api/server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>

#include <chrono>

#include "api/http_server.h"
#include "api/peer.h"
#include "api/prefer.h"
#include "ui/dashboard.h"

namespace sm::api {
namespace {
std::unique_ptr<httplib::Server> make_server(const edge::CertFiles& tls) {
  if (tls.cert.empty()) return std::make_unique<httplib::Server>();
  auto s = std::make_unique<httplib::SSLServer>(tls.cert.c_str(), tls.key.c_str());
  if (!s->is_valid())
    throw std::runtime_error(fmt::format("cannot use {} and {} for the API's TLS",
                                         tls.cert.string(), tls.key.string()));
  return s;
}

}  // namespace

ApiServer::ApiServer(const app::Directory& apps, ApiSecurity security)
    : apps_(apps),
      server_(make_server(security.tls)),
      admission_{std::move(security.token), security.tls.cert.empty() ? "http" : "https", nullptr},
      logs_(stopping_) {
  auto& s = *server_;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    return admit(admission_, req, res) ? httplib::Server::HandlerResponse::Unhandled : httplib::Server::HandlerResponse::Handled;
  });
  // Few threads: a deploy holds one for its duration, each log follower one; status and
  // 409s need the others.
  s.new_task_queue = [this] { return new detail::Pool(6 + kMaxLogFollowers + ui::kMaxEventFeeds, accept_loop_ended_); };  // owned by httplib
  s.set_payload_max_length(kMaxBodyBytes);
  s.set_keep_alive_timeout(2);
  // httplib's default adds SO_REUSEPORT, which would let a second daemon share the port
  // silently. SO_REUSEADDR alone still allows a quick restart, and closing the socket on
  // exec keeps it out of the apps.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    fcntl(sock, F_SETFD, FD_CLOEXEC);
  });

  add_routes();

  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg;
    switch (res.status) {
      case 404: msg = fmt::format("no such endpoint: {} {}", req.method, req.path); break;
      case 413: msg = fmt::format("request body too large; the limit is {} bytes", kMaxBodyBytes); break;
      case 400: msg = "malformed HTTP request"; break;
      default: msg = fmt::format("HTTP {}", res.status);
    }
    reply(res, res.status, {{"error", msg}});
  });
}

ApiServer::~ApiServer() { stop(); }

void ApiServer::serve_dashboard(ui::Dashboard& dashboard) {
  admission_.dashboard = &dashboard;
  dashboard.add_routes(*server_, stopping_);
}

bool ApiServer::wait_of(const httplib::Request& req, httplib::Response& res, app::OpWait& wait) const {
  const PreferWait p = parse_prefer_wait(req.get_header_value("Prefer"));
  if (!p.error.empty()) {
    reply(res, 400, {{"success", false}, {"error", p.error}});
    return false;
  }
  if (!p.seconds) return true;
  wait.up_to = std::chrono::seconds(*p.seconds);
  if (*p.seconds > 0) wait.gave_up = peer_gone(req, port_);
  return true;
}

}  // namespace sm::api
