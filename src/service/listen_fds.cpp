#include "service/listen_fds.h"

#include <fmt/format.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace sm::service {
namespace {

bool is_default_name(const std::string& name) {
  return name == "unknown" || name.ends_with(".socket") || name == "stored";
}

const char* kExpected = "expected public, api, internal or https (or a socket unit's own "
                        "name, matched by port)";

}  // namespace

Listeners assign(const std::vector<PassedSocket>& passed, const Roles& roles) {
  Listeners out;
  const bool separate_internal = roles.proxy && roles.internal_port != roles.port;
  auto role_of_port = [&](int port) -> std::string {
    if (port == roles.api_port) return "api";
    if (port == roles.port) return "public";
    if (port == roles.internal_port) return "internal";
    if (roles.tls_port && port == roles.tls_port) return "https";
    return "";
  };
  for (const auto& s : passed) {
    std::string role = s.name;
    if (is_default_name(s.name)) {
      role = role_of_port(s.port);
      if (role.empty())
        throw ActivationError(fmt::format(
            "passed socket {} (\"{}\") is bound to port {}, which is none of port {}, api_port "
            "{} or internal_port {}; fix the socket unit's ListenStream= or the config",
            s.fd, s.name, s.port, roles.port, roles.api_port, roles.internal_port));
    } else if (role != "public" && role != "api" && role != "internal" && role != "https") {
      throw ActivationError(
          fmt::format("unknown socket name \"{}\" in LISTEN_FDNAMES; {}", s.name, kExpected));
    }
    if (role == "https" && !roles.tls_port)
      throw ActivationError(fmt::format(
          "passed socket \"https\" (port {}) is not needed: the config has no \"tls\"", s.port));
    const int want = role == "api"      ? roles.api_port
                     : role == "public" ? roles.port
                     : role == "https"  ? roles.tls_port
                                        : roles.internal_port;
    if (s.port != want)
      throw ActivationError(fmt::format(
          "passed socket \"{}\" is bound to port {} but the config's {} is {}; make the socket "
          "unit and slot-machine.json agree",
          s.name, s.port,
          role == "api" ? "api_port" : role == "public" ? "port" : role == "https" ? "tls.port" : "internal_port",
          want));
    if (role != "api" && !roles.proxy)
      throw ActivationError(fmt::format(
          "passed socket \"{}\" (port {}) is for the proxy, but the daemon runs with --no-proxy, "
          "where the app binds that port itself; pass only the api socket, or start in proxy mode",
          role, s.port));
    if (role == "internal" && !separate_internal)
      throw ActivationError(fmt::format(
          "passed socket \"internal\" (port {}) is not needed: internal_port equals port", s.port));
    int& slot = role == "api"      ? out.api_fd
                : role == "public" ? out.public_fd
                : role == "https"  ? out.https_fd
                                   : out.internal_fd;
    if (slot != -1)
      throw ActivationError(fmt::format("two passed sockets for \"{}\" (port {}); pass one", role, s.port));
    slot = s.fd;
  }
  return out;
}

std::vector<PassedSocket> passed_sockets() {
  char** names = nullptr;
  const int n = sd_listen_fds_with_names(1, &names);
  std::vector<PassedSocket> out;
  if (n <= 0) return out;
  std::string bad;
  for (int i = 0; i < n; ++i) {
    PassedSocket s;
    s.fd = SD_LISTEN_FDS_START + i;
    s.name = names && names[i] ? names[i] : "unknown";
    free(names ? names[i] : nullptr);
    // The daemon's own children (apps, a newer daemon) must not inherit it by accident.
    fcntl(s.fd, F_SETFD, FD_CLOEXEC);
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (sd_is_socket(s.fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0 ||
        getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        (addr.ss_family != AF_INET && addr.ss_family != AF_INET6)) {
      if (bad.empty()) bad = fmt::format("passed socket {} (\"{}\") is not a listening TCP socket", s.fd, s.name);
      continue;
    }
    s.port = ntohs(addr.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&addr)->sin_port
                                             : reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    out.push_back(std::move(s));
  }
  free(names);
  if (!bad.empty()) throw ActivationError(bad + "; pass ListenStream= sockets only");
  return out;
}

}  // namespace sm::service
