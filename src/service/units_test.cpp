#include "service/units.h"

#include <doctest/doctest.h>

using namespace sm::service;

namespace {
UnitSpec spec() {
  UnitSpec s;
  s.name = "slot-machine-shop";
  s.binary = "/usr/bin/slot-machine";
  s.config = "/srv/shop/slot-machine.json";
  s.repo = "/srv/shop";
  s.data = "/srv/shop/.slot-machine";
  return s;
}
}  // namespace

TEST_CASE("units: the service runs the daemon as a notify service, reload upgrades, stop drains") {
  sm::config::Config cfg;
  cfg.api_port = 9200;
  cfg.drain_timeout_ms = 20000;
  const std::string u = service_unit(spec(), cfg);
  CHECK(u.find("Type=notify\n") != std::string::npos);
  CHECK(u.find("ExecStart=/usr/bin/slot-machine start --config /srv/shop/slot-machine.json --repo /srv/shop "
               "--data /srv/shop/.slot-machine\n") != std::string::npos);
  CHECK(u.find("ExecReload=/usr/bin/slot-machine upgrade --api-port 9200\n") != std::string::npos);
  CHECK(u.find("KillMode=mixed\n") != std::string::npos);
  CHECK(u.find("TimeoutStopSec=50\n") != std::string::npos);
  CHECK(u.find("Requires=slot-machine-shop.socket\n") != std::string::npos);
  CHECK(u.find("User=") == std::string::npos);
  auto s = spec();
  s.user = "deploy";
  s.proxy = false;
  s.repo = "/srv/my shop%1";
  const std::string v = service_unit(s, cfg);
  CHECK(v.find("User=deploy\n") != std::string::npos);
  CHECK(v.find("--repo \"/srv/my shop%%1\"") != std::string::npos);
  CHECK(v.find(" --no-proxy\n") != std::string::npos);
}

TEST_CASE("units: the socket holds the API port, and the public and internal ports in proxy mode") {
  sm::config::Config cfg;
  cfg.port = 3000;
  cfg.internal_port = 3001;
  cfg.api_port = 9100;
  std::string u = socket_unit(spec(), cfg);
  CHECK(u.find("ListenStream=127.0.0.1:9100\n") != std::string::npos);
  CHECK(u.find("ListenStream=0.0.0.0:3000\n") != std::string::npos);
  CHECK(u.find("ListenStream=127.0.0.1:3001\n") != std::string::npos);
  CHECK(u.find("Service=slot-machine-shop.service\n") != std::string::npos);
  auto s = spec();
  s.proxy = false;
  u = socket_unit(s, cfg);
  CHECK(u.find(":3000") == std::string::npos);
  CHECK(default_unit_name("/srv/my shop") == "slot-machine-my-shop");
  CHECK(default_unit_name("/srv/shop.example") == "slot-machine-shop.example");
}
