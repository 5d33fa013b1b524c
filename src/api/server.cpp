#include "api/server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <thread>
#include <filesystem>
#include <fstream>

#include "api/bodies.h"
#include "api/http_server.h"
#include "edge/api_token.h"
#include "metrics/exposition.h"
#include "ui/dashboard.h"
#include "ui/sse.h"
#include "api/peer.h"
#include "daemon/slot_logs.h"
#include "log/json_text.h"
#include <nlohmann/json.hpp>

namespace sm::api {
using nlohmann::json;
using daemon::OpResult;
using daemon::OpStatus;

namespace {

/// Reads the query parameter `name` as a whole number in [lo, hi] (`fallback` when
/// absent) into `out`; otherwise answers 400 naming it and returns false.
bool count_param(const httplib::Request& req, httplib::Response& res, const char* name,
                 size_t fallback, long lo, long hi, size_t& out) {
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

bool wants_ndjson(const httplib::Request& req) {
  return req.get_header_value("Accept").find("application/x-ndjson") != std::string::npos;
}

/// Answers 200 with `application/x-ndjson`: one progress event per line as `run` makes
/// them, then {"event":"done","status":<the plain call's HTTP status>,"duration_ms"},
/// then the operation's final object (the plain answer's body). A client that goes away
/// does not stop the operation.
void stream_op(httplib::Response& res, std::function<OpResult(const daemon::Daemon::Progress&)> run,
               bool with_previous) {
  res.set_chunked_content_provider(
      "application/x-ndjson",
      [run = std::move(run), with_previous](size_t, httplib::DataSink& sink) {
        bool connected = true;
        auto send = [&](const json& j) {
          const std::string line = log::json_text(j) + "\n";
          if (connected) connected = sink.write(line.data(), line.size());
        };
        const auto began = std::chrono::steady_clock::now();
        OpResult r = run([&](const json& event) { send(event); });
        send({{"event", "done"},
              {"status", http_status(r.status)},
              {"duration_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now() - began).count()}});
        send(op_body(r, with_previous));
        if (connected) sink.done();
        return connected;
      });
}

void method_not_allowed(httplib::Server& s, const std::string& path, const char* allow) {
  auto h = [allow](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Allow", allow);
    reply(res, 405, {{"error", fmt::format("{} is not allowed on {}; use {}", req.method,
                                           req.path, allow)}});
  };
  if (std::strcmp(allow, "GET") == 0) {
    s.Post(path, h);
    s.Put(path, h);
    s.Delete(path, h);
  } else {
    s.Get(path, h);
    s.Put(path, h);
    s.Delete(path, h);
  }
}

}  // namespace

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

ApiServer::ApiServer(daemon::Daemon& d, ApiSecurity security)
    : daemon_(d), server_(make_server(security.tls)), token_(std::move(security.token)),
      scheme_(security.tls.cert.empty() ? "http" : "https") {
  auto& s = *server_;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    return admit(req, res) ? httplib::Server::HandlerResponse::Unhandled : httplib::Server::HandlerResponse::Handled;
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

  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, {{"status", "ok"}});
  });
  s.Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, status_body(daemon_.status()));
  });
  s.Post("/deploy", [this](const httplib::Request& req, httplib::Response& res) {
    auto [d, error] = parse_deploy_body(req.body);
    if (!error.empty()) {
      reply(res, 400, {{"success", false}, {"error", error}});
      return;
    }
    const std::string commit = d.commit;
    const std::filesystem::path quarantine = d.quarantine;
    const bool force = d.force;
    daemon::OpWait wait;
    if (!wait_of(req, res, wait)) return;
    if (wants_ndjson(req)) {
      stream_op(res, [this, commit, quarantine, wait, force](const daemon::Daemon::Progress& p) {
        return daemon_.deploy(commit, p, wait, quarantine, force);
      }, true);
      return;
    }
    OpResult r = daemon_.deploy(commit, {}, wait, quarantine, force);
    reply(res, http_status(r.status), op_body(r, true));
  });
  // Rollback and restart take no body: the same route, another operation.
  using Op = OpResult (daemon::Daemon::*)(daemon::Daemon::Progress, const daemon::OpWait&);
  auto bodiless_op = [this, &s](const char* path, Op op, bool with_previous) {
    s.Post(path, [this, op, with_previous](const httplib::Request& req, httplib::Response& res) {
      daemon::OpWait wait;
      if (!wait_of(req, res, wait)) return;
      if (wants_ndjson(req)) {
        stream_op(res, [this, op, wait](const daemon::Daemon::Progress& p) { return (daemon_.*op)(p, wait); },
                  with_previous);
        return;
      }
      OpResult r = (daemon_.*op)({}, wait);
      reply(res, http_status(r.status), op_body(r, with_previous));
    });
  };
  bodiless_op("/rollback", &daemon::Daemon::rollback, false);
  bodiless_op("/restart", &daemon::Daemon::restart, true);
  method_not_allowed(s, "/restart", "POST");
  s.Post("/cancel", [this](const httplib::Request&, httplib::Response& res) {
    if (auto c = daemon_.cancel())
      reply(res, 200, {{"cancelled", c->operation}, {"stage", c->stage}});
    else
      reply(res, 409, {{"error", "nothing to cancel: no deploy or rollback is running (or it is "
                                 "already finishing)"}});
  });
  method_not_allowed(s, "/cancel", "POST");
  s.Post("/upgrade", [this](const httplib::Request&, httplib::Response& res) {
    if (!upgrade_) {
      reply(res, 501, {{"success", false}, {"error", "this daemon cannot upgrade itself"}});
      return;
    }
    const UpgradeAnswer a = upgrade_();
    if (a.status == 200)
      reply(res, 200, {{"success", true}, {"pid", a.pid}, {"version", a.version}});
    else
      reply(res, a.status, {{"success", false}, {"error", a.error}});
  });
  method_not_allowed(s, "/upgrade", "POST");
  s.Post("/shutdown", [this](const httplib::Request&, httplib::Response& res) {
    if (!shutdown_) {
      reply(res, 501, {{"success", false}, {"error", "this daemon cannot be stopped over its API"}});
      return;
    }
    reply(res, 200, {{"success", true}, {"pid", getpid()}});
    shutdown_();  // drains as SIGTERM does, after this answer has gone
  });
  method_not_allowed(s, "/shutdown", "POST");
  s.Get("/history", [this](const httplib::Request& req, httplib::Response& res) {
    size_t limit = 0, skip = 0;
    if (count_param(req, res, "limit", 20, 1, 10000, limit) && count_param(req, res, "skip", 0, 0, 100000000, skip))
      reply(res, 200, {{"entries", daemon_.history(limit, skip)}});
  });
  method_not_allowed(s, "/history", "GET");
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    if (!metrics_) {
      reply(res, 501, {{"error", "this daemon has no metrics"}});
      return;
    }
    res.set_content(metrics_(), metrics::Exposition::kContentType);
  });
  method_not_allowed(s, "/metrics", "GET");
  s.Get("/logs", [this](const httplib::Request& req, httplib::Response& res) { logs(req, res); });
  method_not_allowed(s, "/logs", "GET");
  method_not_allowed(s, "/deploy", "POST");
  method_not_allowed(s, "/rollback", "POST");
  method_not_allowed(s, "/status", "GET");

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
  dashboard_ = &dashboard;
  dashboard.add_routes(*server_, stopping_);
}

bool ApiServer::admit(const httplib::Request& req, httplib::Response& res) {
  // A browser says where a request comes from; the CLI and scripts send no Origin. A
  // POST from another site's page is refused whatever it carries (cross-site request
  // forgery, also against a token-less daemon on loopback).
  if (req.method != "GET" && req.method != "HEAD" &&
      !ui::same_origin(req.get_header_value("Origin"), req.get_header_value("Host"), scheme_)) {
    reply(res, 403, {{"error", fmt::format("cross-origin request refused: Origin {} is not this API ({}://{})",
                                           req.get_header_value("Origin"), scheme_, req.get_header_value("Host"))}});
    return false;
  }
  if (!token_) return true;
  if (req.method == "GET" && req.path == "/") return true;  // liveness
  if (dashboard_ && ui::Dashboard::is_open(req)) return true;
  if (edge::bearer_matches(req.get_header_value("Authorization"), *token_)) return true;
  if (dashboard_ && !req.has_header("Authorization")) {
    std::string why;
    switch (dashboard_->access(req, why)) {
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

bool ApiServer::wait_of(const httplib::Request& req, httplib::Response& res,
                        daemon::OpWait& wait) const {
  // Prefer: a comma-separated list of preferences (RFC 7240); only wait=N matters here.
  const std::string prefer = req.get_header_value("Prefer");
  for (size_t from = 0; from <= prefer.size();) {
    size_t comma = prefer.find(',', from);
    if (comma == std::string::npos) comma = prefer.size();
    std::string item = prefer.substr(from, comma - from);
    from = comma + 1;
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    const size_t eq = item.find('=');
    std::string name = item.substr(0, eq);
    name.erase(name.find_last_not_of(" \t") + 1);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (eq == std::string::npos || name != "wait") continue;
    std::string value = item.substr(eq + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    if (!value.empty() && value.front() == '"' && value.back() == '"' && value.size() >= 2)
      value = value.substr(1, value.size() - 2);
    const bool digits = !value.empty() && value.size() <= 6 &&
                        value.find_first_not_of("0123456789") == std::string::npos;
    const long n = digits ? std::stol(value) : -1;
    if (n < 0 || n > 86400) {
      reply(res, 400, {{"success", false},
                       {"error", fmt::format("Prefer: wait must be a whole number of seconds from "
                                             "0 to 86400, got \"{}\"", value)}});
      return false;
    }
    wait.up_to = std::chrono::seconds(n);
    if (n > 0) wait.gave_up = peer_gone(req, port_);
    return true;
  }
  return true;
}

void ApiServer::logs(const httplib::Request& req, httplib::Response& res) {
  std::string error;
  const auto path = daemon_.log_file(req.has_param("slot") ? req.get_param_value("slot") : "live", error);
  if (path.empty()) {
    reply(res, error.rfind("unknown", 0) == 0 ? 400 : 404, {{"error", error}});
    return;
  }
  size_t tail = 0;
  if (!count_param(req, res, "tail", 100, 0, 100000, tail)) return;
  const std::string follow = req.has_param("follow") ? req.get_param_value("follow") : "0";
  if (follow != "0" && follow != "1") {
    reply(res, 400, {{"error", fmt::format("follow must be 0 or 1, got \"{}\"", follow)}});
    return;
  }
  std::uintmax_t offset = 0;
  std::string text = daemon::tail_lines(path, tail, offset);
  // A browser's EventSource asks for Server-Sent Events: one "line" event per line.
  std::shared_ptr<ui::SseLines> sse;
  if (req.get_header_value("Accept").find("text/event-stream") != std::string::npos) {
    sse = std::make_shared<ui::SseLines>();
    text = sse->feed(text);
  }
  const char* type = sse ? "text/event-stream" : "text/plain; charset=utf-8";
  if (follow == "0") {
    res.set_content(text, type);
    return;
  }
  if (++followers_ > kMaxLogFollowers) {
    --followers_;
    reply(res, 503, {{"error", fmt::format("already {} log followers; stop one and try again", kMaxLogFollowers)}});
    return;
  }
  // Streams what is there, then every new byte as it is written; the log being
  // truncated by rotation restarts from its beginning. Ends when the daemon stops or
  // the client goes away: noticed at the next write, or within a second while the log
  // is quiet (a closed dashboard tab must not hold one of the few follower places).
  auto pending = std::make_shared<std::string>(std::move(text));
  auto at = std::make_shared<std::uintmax_t>(offset);
  auto idle = std::make_shared<unsigned>(0);
  res.set_chunked_content_provider(
      type,
      [this, path, pending, at, sse, idle, gone = peer_gone(req, port_)](size_t, httplib::DataSink& sink) {
        while (pending->empty()) {
          if (stopping_) {
            sink.done();
            return true;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          if (++*idle % 10 == 0 && gone()) return false;
          std::error_code ec;
          const auto size = std::filesystem::file_size(path, ec);
          if (ec) continue;
          if (size < *at) *at = 0;
          if (size == *at) continue;
          std::ifstream in(path, std::ios::binary);
          in.seekg(static_cast<std::streamoff>(*at));
          pending->resize(static_cast<size_t>(std::min<std::uintmax_t>(size - *at, 1 << 20)));
          in.read(pending->data(), static_cast<std::streamsize>(pending->size()));
          pending->resize(static_cast<size_t>(in.gcount()));
          *at += pending->size();
          if (sse) *pending = sse->feed(*pending);
        }
        const bool ok = sink.write(pending->data(), pending->size());
        pending->clear();
        return ok;
      },
      [this](bool) { --followers_; });
}

}  // namespace sm::api
