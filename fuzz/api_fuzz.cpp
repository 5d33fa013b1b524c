// The daemon's API in process: a real ApiServer and App (direct mode, an empty
// repository, so no revision resolves and nothing is ever started), listed as the app
// "one" beside an app "two" that does not run (so /apps/NAME/ routes reach both the App
// and the refusals, and unprefixed ones the 400 of several apps), fed requests whose
// method, path, query, headers and body come from the input:
//   byte 0 picks the method; then lines: the target, header lines, an empty line, body.
// Every answer must be a well-formed HTTP response; the server must answer at all (no
// hang). `follow` is taken out of targets: a followed log streams until the client
// leaves, by design.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "api/server.h"
#include "app/directory.h"
#include "app/router.h"
#include "fuzz_support.h"
#include "git/git.h"
#include "net_support.h"
#include "process/reaper.h"

namespace {

struct World {
  sm::git::Library library;
  sm::process::Reaper reaper;
  sm::app::DirectRouter router{sm::app::Ports{fuzz::free_port(), fuzz::free_port()}};
  std::shared_ptr<sm::app::App> daemon;
  sm::app::Directory apps{true};
  std::optional<sm::api::ApiServer> server;
  int port = fuzz::free_port();

  World() {
    sm::config::Config cfg;
    cfg.start_command = "exit 3";
    cfg.health_timeout_ms = 50;
    cfg.drain_timeout_ms = 0;
    daemon = std::make_shared<sm::app::App>(cfg, sm::app::Paths{fuzz::scratch() / "data", ""},
                                            sm::git::Repository::open(fuzz::scratch() / "repo"), reaper, router);
    daemon->restore();
    apps.publish({{"one", {"one.test"}, fuzz::scratch() / "repo", daemon, ""},
                  {"two", {"two.test"}, "/nonexistent", nullptr, "its config is missing"}});
    server.emplace(apps);
    server->bind("127.0.0.1", port);
    server->serve();  // POST /upgrade answers 501: no upgrade is wired here
  }
};
World* world = nullptr;

const char* const kMethods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};

/// One line of the input, without CR/LF (so the request stays one request).
std::string_view take_line(std::string_view& in) {
  const size_t nl = in.find('\n');
  std::string_view line = in.substr(0, nl);
  in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Before the World: its Reaper reaps every child, git's included.
  fuzz::make_repo(fuzz::scratch() / "repo", 0);
  world = new World();  // lives until exit: the server thread uses it
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string target(take_line(in));
  for (char& c : target)
    if (c == ' ' || c == '\r' || c == '\0') c = '_';
  if (target.empty() || target[0] != '/') target.insert(0, "/");
  for (size_t at; (at = target.find("follow")) != std::string::npos;) target.replace(at, 6, "f");
  std::string req = std::string(kMethods[data[0] % 7]) + " " + target + " HTTP/1.1\r\nHost: x\r\n";
  for (std::string_view line; !in.empty() && !(line = take_line(in)).empty();)
    if (line.find('\r') == std::string_view::npos && line.find(':') != std::string_view::npos &&
        line.rfind("Content-Length", 0) && line.rfind("Transfer-Encoding", 0) && line.rfind("Connection", 0))
      req.append(line).append("\r\n");
  req += "Content-Length: " + std::to_string(in.size()) + "\r\nConnection: close\r\n\r\n";
  req.append(in);
  bool hung = false;
  const std::string res = fuzz::exchange(world->port, req, &hung, /*half_close=*/false);
  if (hung) {
    fprintf(stderr, "api did not answer\n");
    __builtin_trap();
  }
  if (res.rfind("HTTP/1.1 ", 0) != 0) {
    fprintf(stderr, "api answered: [%s]\n", res.c_str());
    __builtin_trap();
  }
  return 0;
}
