#include "service/listen_fds.h"

#include <doctest/doctest.h>

using namespace sm::service;

namespace {
const Roles kProxy{3000, 9100, 3001, true};

std::string error_of(const std::vector<PassedSocket>& passed, const Roles& roles = kProxy) {
  try {
    assign(passed, roles);
  } catch (const ActivationError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("passed sockets: by name, or by port for systemd's default names") {
  auto l = assign({{3, "public", 3000}, {4, "api", 9100}, {5, "internal", 3001}}, kProxy);
  CHECK(l.public_fd == 3);
  CHECK(l.api_fd == 4);
  CHECK(l.internal_fd == 5);
  // One socket unit holding both ports: every fd carries the unit's name.
  l = assign({{3, "slot-machine-app.socket", 9100}, {4, "slot-machine-app.socket", 3000}}, kProxy);
  CHECK(l.api_fd == 3);
  CHECK(l.public_fd == 4);
  CHECK(l.internal_fd == -1);  // bound by the daemon itself
  l = assign({{3, "unknown", 9100}}, {3000, 9100, 3000, false});
  CHECK(l.api_fd == 3);
  CHECK(assign({}, kProxy).api_fd == -1);
}

TEST_CASE("passed sockets: what cannot be used is refused, naming what was expected") {
  CHECK(error_of({{3, "web", 3000}}).find("unknown socket name \"web\"") != std::string::npos);
  CHECK(error_of({{3, "web", 3000}}).find("expected public, api, internal or https") != std::string::npos);
  CHECK(error_of({{3, "public", 8080}}).find("bound to port 8080 but the config's port is 3000") !=
        std::string::npos);
  CHECK(error_of({{3, "x.socket", 4444}}).find("none of port 3000, api_port 9100") != std::string::npos);
  CHECK(error_of({{3, "api", 9100}, {4, "x.socket", 9100}}).find("two passed sockets for \"api\"") !=
        std::string::npos);
  CHECK(error_of({{3, "public", 3000}}, {3000, 9100, 3000, false}).find("--no-proxy") != std::string::npos);
  CHECK(error_of({{3, "internal", 3000}}, {3000, 9100, 3000, true}).find("internal_port equals port") !=
        std::string::npos);
}

TEST_CASE("passed sockets: https for tls.port, by name or by port; refused without tls") {
  const Roles with_tls{3000, 9100, 3001, true, 3443};
  auto l = assign({{3, "https", 3443}, {4, "public", 3000}}, with_tls);
  CHECK(l.https_fd == 3);
  CHECK(l.public_fd == 4);
  l = assign({{3, "app.socket", 3443}}, with_tls);
  CHECK(l.https_fd == 3);
  CHECK(error_of({{3, "https", 3443}}).find("the config has no \"tls\"") != std::string::npos);
  try {
    assign({{3, "https", 3444}}, with_tls);
    CHECK(false);
  } catch (const ActivationError& e) {
    CHECK(std::string(e.what()).find("the config's tls.port is 3443") != std::string::npos);
  }
}
