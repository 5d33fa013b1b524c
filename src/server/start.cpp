#include "server/start.h"

#include <fmt/format.h>

#include <iostream>

#include "process/reaper.h"
#include "server/server.h"
#include "service/listen_fds.h"
#include "service/upgrade.h"

namespace sm::server {

int start_daemon(const StartOptions& opts) {
  // Before any thread exists, so every thread inherits the mask.
  process::block_daemon_signals();
  service::own_executable();  // now, before an upgrade of the package replaces the file
  // Started by an upgrade: the old daemon waits to hear that this one serves, or why not.
  auto predecessor = service::Predecessor::from_environment();
  std::optional<Server> server;
  try {
    Settings settings = read_settings(opts);
    service::Listeners given;  // sockets passed by systemd, or by the daemon this one replaces
    try {
      const auto& c = settings.cfg;
      given = service::assign(service::passed_sockets(),
                              {c.port, c.api_port, c.internal_port, !opts.no_proxy, c.tls_port});
    } catch (const service::ActivationError& e) {
      throw StartError(2, e.what());
    }
    server.emplace(opts, std::move(settings), given);
  } catch (const std::exception& e) {
    const auto* start = dynamic_cast<const StartError*>(&e);
    std::cerr << "slot-machine: " << e.what() << "\n";
    if (predecessor) predecessor->failed(e.what());
    return start ? start->code : 1;
  }
  server->serve(predecessor);
  const int signal = server->wait_for_signal();
  if (server->handed_over())
    server->finish_after_hand_over();
  else
    server->shut_down(signal);
  return 0;
}

}  // namespace sm::server
