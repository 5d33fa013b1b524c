#include "cli/client_http.h"

#include <fmt/format.h>
#include <httplib.h>

#include "config/config.h"
#include "edge/api_token.h"
#include "process/port_owner.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>

namespace sm::cli {
using nlohmann::json;

namespace {

std::string failure_of(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "connection refused";
    case httplib::Error::SSLConnection:
      return "TLS handshake failed: is the API served over HTTPS? (http:// to an HTTPS port, "
             "or https:// to a plain one, fails this way)";
    case httplib::Error::SSLServerVerification:
      return "its TLS certificate is not trusted or does not name this host; pass --cacert "
             "PATH with the certificate (or its CA) and use the name or address it was issued for";
    case httplib::Error::SSLLoadingCerts:
      return "cannot load the --cacert file";
    default:
      return httplib::to_string(e);
  }
}

/// A client for the daemon at o.url: its timeouts, the token, and whom to trust.
std::unique_ptr<httplib::Client> connect(const ClientOptions& o, time_t read_timeout_s) {
  auto c = std::make_unique<httplib::Client>(o.url);
  c->set_connection_timeout(2, 0);
  c->set_read_timeout(read_timeout_s, 0);
  if (o.token) c->set_bearer_token_auth(*o.token);
  if (!o.cacert.empty()) c->set_ca_cert_path(o.cacert.c_str());
  c->enable_server_certificate_verification(true);
  return c;
}

/// Whether `d` will serve its API on `port`: its --port, else its config's api_port.
bool will_serve(const process::DaemonProcess& d, int port) {
  std::filesystem::path config = "slot-machine.json";
  std::optional<std::string> port_arg;
  for (size_t i = 0; i < d.args.size(); ++i) {  // "--port N" or "--port=N", the same for --config
    const std::string& a = d.args[i];
    const bool next = i + 1 < d.args.size();
    if (a == "--port" && next) port_arg = d.args[i + 1];
    if (a.starts_with("--port=")) port_arg = a.substr(7);
    if (a == "--config" && next) config = d.args[i + 1];
    if (a.starts_with("--config=")) config = a.substr(9);
  }
  if (port_arg) return *port_arg == std::to_string(port);
  try {
    return config::client_settings((d.cwd / config).string()).api_port == port;
  } catch (const std::exception&) {
    return false;
  }
}

/// Whether to try again after `error`: nothing listens on a local daemon's API port, but
/// a `slot-machine start` that will serve it runs (`start &` then `deploy` in a script: it
/// is still starting). Up to 10 s from `began`; a refused connection sent nothing, so
/// trying again is safe.
bool daemon_still_starting(const ClientOptions& o, httplib::Error error, std::chrono::steady_clock::time_point began) {
  if (error != httplib::Error::Connection || o.remote || o.local_port == 0) return false;
  if (std::chrono::steady_clock::now() - began > std::chrono::seconds(10)) return false;
  const auto daemons = process::daemon_processes();
  if (std::none_of(daemons.begin(), daemons.end(), [&](const auto& d) { return will_serve(d, o.local_port); }))
    return false;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return true;
}

}  // namespace

std::string str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

Reply call(const ClientOptions& o, const std::string& method, const std::string& path,
           const std::string& body, time_t read_timeout_s) {
  auto c = connect(o, read_timeout_s);
  httplib::Headers headers;
  if (o.wait_s > 0) headers.emplace("Prefer", fmt::format("wait={}", o.wait_s));
  const auto began = std::chrono::steady_clock::now();
  httplib::Result res = method == "GET" ? c->Get(path) : c->Post(path, headers, body, "application/json");
  while (!res && daemon_still_starting(o, res.error(), began))
    res = method == "GET" ? c->Get(path) : c->Post(path, headers, body, "application/json");
  Reply r;
  if (!res) {
    r.failure = failure_of(res.error());
    return r;
  }
  r.status = res->status;
  try {
    r.body = json::parse(res->body);
  } catch (const json::exception&) {
    r.body = json{{"error", fmt::format("daemon answered HTTP {} with a non-JSON body", res->status)}};
  }
  return r;
}

Reply call_following(const ClientOptions& o, const std::string& path, time_t read_timeout_s,
                     const std::function<bool(const char*, size_t)>& on_data) {
  auto c = connect(o, read_timeout_s);
  Reply r;
  std::string error_body;
  auto get = [&] {
    return c->Get(
        path,
        [&](const httplib::Response& resp) {
          r.status = resp.status;
          return true;
        },
        [&](const char* data, size_t len) {
          if (r.status == 200) return on_data(data, len);
          error_body.append(data, len);
          return true;
        });
  };
  const auto began = std::chrono::steady_clock::now();
  auto res = get();
  while (!res && r.status == 0 && daemon_still_starting(o, res.error(), began)) res = get();
  if (!res && r.status != 200) r.failure = failure_of(res.error());
  if (r.status != 200) {
    r.body = json::parse(error_body, nullptr, false);
    if (!r.body.is_object()) r.body = json{{"error", error_body}};
  }
  return r;
}

Reply post_events(const ClientOptions& o, const std::string& path, const std::string& body, time_t read_timeout_s,
                  const std::function<void(const json&)>& on_event) {
  auto c = connect(o, read_timeout_s);
  Reply r;
  std::string buffer;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = {{"Accept", "application/x-ndjson"}, {"Content-Type", "application/json"}};
  req.body = body;
  req.response_handler = [&](const httplib::Response& resp) {
    r.status = resp.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    buffer.append(data, len);
    if (r.status != 200) return true;  // an error body: parsed below
    for (size_t nl; (nl = buffer.find('\n')) != std::string::npos; buffer.erase(0, nl + 1)) {
      const json e = json::parse(buffer.substr(0, nl), nullptr, false);
      if (e.is_object()) on_event(e);
    }
    return true;
  };
  auto res = c->send(req);
  if (!res && r.status == 0) {
    r.failure = failure_of(res.error());
    return r;
  }
  if (r.status != 200) {
    r.body = json::parse(buffer, nullptr, false);
    if (!r.body.is_object()) r.body = json{{"error", fmt::format("daemon answered HTTP {}", r.status)}};
  }
  return r;
}

std::string unreachable(const ClientOptions& o, const std::string& why) {
  if (o.remote)
    return fmt::format("slot-machine: cannot reach the daemon at {} ({}); check the --remote URL "
                       "and that `slot-machine start` runs there\n",
                       o.url, why);
  return fmt::format("slot-machine: cannot reach the daemon at {} ({}); is `slot-machine start` "
                     "running? (the API port comes from ./slot-machine.json or --api-port)\n",
                     o.url, why);
}

bool reachable(const ClientOptions& o, std::ostream& err) {
  Reply r = call(o, "GET", "/", "", 5);
  if (!r.failure.empty() || r.status != 200) {
    err << unreachable(o, r.failure.empty() ? fmt::format("HTTP {}", r.status) : r.failure);
    return false;
  }
  return true;
}

bool answered_ok(const ClientOptions& o, const Reply& r, const char* what, std::ostream& err) {
  if (!r.failure.empty()) {
    err << unreachable(o, r.failure);
    return false;
  }
  if (r.status != 200) {
    err << fmt::format("slot-machine: {} failed (HTTP {}){}: {}\n", what, r.status,
                       o.remote ? " on " + o.url : "", str(r.body, "error"));
    return false;
  }
  return true;
}

Reply call_streaming(const ClientOptions& o, const std::string& path, const std::string& body,
                     const char* what, std::ostream& out) {
  auto c = connect(o, 86400);
  Reply r;
  std::string buffer, stage;
  long long stage_at = 0;
  json done;
  auto finish_stage = [&](long long now) {
    if (!stage.empty() && !o.quiet) out << fmt::format("  {:<10} {:>6} ms\n", stage, now - stage_at);
  };
  auto on_line = [&](const std::string& line) {
    json e = json::parse(line, nullptr, false);
    if (!e.is_object()) return;
    const std::string event = str(e, "event");
    const long long at = e.value("at_ms", 0LL);
    if (event.empty()) {  // the final object
      r.body = e;
      return;
    }
    if (event == "stage") {
      finish_stage(at);
      stage = str(e, "stage");
      stage_at = at;
    } else if (event == "output" && !o.quiet &&
               str(e, "line").find_first_not_of(" \t\r") != std::string::npos) {  // npm's blank lines
      out << "    | " << str(e, "line") << "\n";
    } else if (event == "health" && !o.quiet && !e.value("healthy", false) && at - stage_at >= 500) {
      out << fmt::format("    health check {}: {}\n", e.value("attempt", 0), str(e, "detail"));
    } else if (event == "done") {
      done = e;
      if (e.value("status", 200) == 200)
        finish_stage(e.value("duration_ms", 0LL));
      else if (!stage.empty() && !o.quiet)  // the stage it failed at did not finish
        out << fmt::format("  {:<10} failed after {} ms\n", stage, e.value("duration_ms", 0LL) - stage_at);
      stage.clear();
    }
    out.flush();
  };
  if (!o.quiet) out << fmt::format("{}\n", what) << std::flush;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = {{"Accept", "application/x-ndjson"}, {"Content-Type", "application/json"}};
  if (o.wait_s > 0) req.headers.emplace("Prefer", fmt::format("wait={}", o.wait_s));
  req.body = body;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    buffer.append(data, len);
    for (size_t nl; (nl = buffer.find('\n')) != std::string::npos; buffer.erase(0, nl + 1))
      on_line(buffer.substr(0, nl));
    return true;
  };
  auto res = c->send(req);
  if (!res) {
    r.failure = failure_of(res.error());
    return r;
  }
  if (res->status != 200 || r.body.is_null()) {  // refused before streaming (a 400)
    r.status = res->status;
    if (r.body.is_null()) r.body = json::parse(buffer, nullptr, false);
    if (!r.body.is_object())
      r.body = json::object({{"error", fmt::format("daemon answered HTTP {}", res->status)}});
    return r;
  }
  r.status = done.value("status", r.body.value("success", false) ? 200 : 500);
  r.took_ms = done.value("duration_ms", -1LL);
  return r;
}

int connection_options(std::optional<int> api_port, std::vector<std::string>& remotes,
                       const std::string& cacert, bool many_allowed, ClientOptions& o,
                       std::ostream& err, const std::string& config) {
  try {
    if (api_port && !remotes.empty())
      throw std::invalid_argument("give --api-port (a daemon on this machine) or --remote, not both");
    if (remotes.size() > 1 && !many_allowed)
      throw std::invalid_argument("only deploy takes more than one --remote");
    for (auto& r : remotes) r = remote_url(r);
    const config::ClientSettings local = config::client_settings(config);
    o.cacert = cacert;
    if (!remotes.empty()) {
      o.url = remotes.front();
      o.remote = true;
    } else {
      if (api_port) config::check_port("--api-port", *api_port);  // the config's is checked already
      const int port = api_port.value_or(local.api_port);
      o.local_port = port;
      // The local daemon's own certificate is the one to trust; it must name localhost.
      o.url = fmt::format("{}://{}:{}", local.api_tls_cert.empty() ? "http" : "https",
                          local.api_tls_cert.empty() ? "127.0.0.1" : "localhost", port);
      if (!local.api_tls_cert.empty() && o.cacert.empty()) o.cacert = local.api_tls_cert.string();
    }
    o.token = edge::find_token(local.api_token_file);
  } catch (const std::exception& e) {  // ConfigError or invalid_argument: a usage error
    err << "slot-machine: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

std::string remote_url(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument(fmt::format(
        "--remote \"{}\": {}; give http://HOST:PORT or https://HOST:PORT", url, why));
  };
  std::string scheme, rest;
  for (const char* s : {"http", "https"})
    if (url.rfind(std::string(s) + "://", 0) == 0) {
      scheme = s;
      rest = url.substr(scheme.size() + 3);
    }
  if (scheme.empty()) throw bad("it must start with http:// or https://");
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find_first_of("/?#@ ") != std::string::npos)
    throw bad("only a host and a port, no path, query or user");
  std::string host = rest, port;
  if (rest.rfind('[', 0) == 0) {  // [IPv6]:port
    const auto close = rest.find(']');
    if (close == std::string::npos) throw bad("an IPv6 address needs its closing ']'");
    host = rest.substr(0, close + 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') throw bad("expected ':' and a port after the IPv6 address");
      port = rest.substr(close + 2);
    }
  } else if (const auto colon = rest.find(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty() || host == "[]") throw bad("no host");
  for (char c : host)
    if (!std::isalnum(static_cast<unsigned char>(c)) && !std::strchr(".-_[]:", c))
      throw bad(fmt::format("'{}' cannot be in a host name", c));
  if (port.empty()) {
    port = scheme == "https" ? "443" : "80";
  } else {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535)
      throw bad(fmt::format("the port must be 1-65535, got \"{}\"", port));
  }
  return fmt::format("{}://{}:{}", scheme, host, std::stoi(port));
}

}  // namespace sm::cli
