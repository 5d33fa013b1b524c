// Logs: per-slot app and setup output, tail and follow over the API and the CLI,
// size-based rotation.

#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include "harness.h"

using namespace spec;

TEST_CASE("logs: tail a slot's output (setup between markers) over the API and the CLI") {
  Site site({{"vA"}, {"vB"}}, {{"setup_command", "echo installing deps for $(cat VERSION)"}});
  Daemon& d = site.d;
  const std::string a = site.commits[0], b = site.commits[1];
  CHECK(http_get(d.api_port(), "/logs").status == 404);  // nothing live yet
  REQUIRE(d.deploy(a).status == 200);
  REQUIRE(d.deploy(b).status == 200);

  auto live = http_get(d.api_port(), "/logs?tail=1000");
  REQUIRE(live.status == 200);
  CHECK(live.body.find("==> setup for " + b) != std::string::npos);
  CHECK(live.body.find("installing deps for vB") != std::string::npos);
  CHECK(live.body.find("==> setup exited with status 0") != std::string::npos);
  CHECK(live.body.find("testapp vB") != std::string::npos);
  CHECK(http_get(d.api_port(), "/logs?slot=previous&tail=1000").body.find("testapp vA") != std::string::npos);
  CHECK(http_get(d.api_port(), "/logs?slot=a&tail=1000").body.find("testapp vA") != std::string::npos);
  http_post(d.internal_port(), "/control/log?line=marker-1", "");
  http_post(d.internal_port(), "/control/log?line=marker-2", "");
  CHECK(http_get(d.api_port(), "/logs?tail=2").body == "marker-1\nmarker-2\n");
  CHECK(http_get(d.api_port(), "/logs?tail=0").body.empty());

  CHECK(http_get(d.api_port(), "/logs?slot=c").status == 400);
  CHECK(http_get(d.api_port(), "/logs?tail=-1").status == 400);
  CHECK(http_get(d.api_port(), "/logs?tail=x").status == 400);
  CHECK(http_get(d.api_port(), "/logs?follow=yes").status == 400);

  auto cli = d.cli({"logs", "-n", "1"});
  CHECK(cli.exit_code == 0);
  CHECK(cli.out == "marker-2\n");
  cli = d.cli({"logs", "--slot", "previous", "-n", "1000"});
  CHECK(cli.out.find("testapp vA") != std::string::npos);
  CHECK(d.cli({"logs", "--slot", "z"}).exit_code == 2);
}

TEST_CASE("logs: follow streams new lines as they are written, over the API and the CLI") {
  Site site({{"vA"}});
  AppRepo& repo = site.repo;
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);

  // API: a follower sees the old tail at once, then a line written later.
  std::string got;
  std::atomic<bool> saw{false};
  std::jthread follower([&] {
    httplib::Client c("127.0.0.1", d.api_port());
    c.set_read_timeout(10, 0);
    c.Get("/logs?tail=100&follow=1", [&](const char* data, size_t len) {
      got.append(data, len);
      saw = got.find("followed-line") != std::string::npos;
      return !saw;  // hang up once seen
    });
  });
  std::this_thread::sleep_for(300ms);
  http_post(d.internal_port(), "/control/log?line=followed-line", "");
  follower.join();
  CHECK(saw);
  CHECK(got.find("listening") != std::string::npos);  // the tail came first

  // CLI: `logs -f` until interrupted (timeout sends SIGTERM after 2 s).
  std::jthread writer([&] {
    std::this_thread::sleep_for(700ms);
    http_post(d.internal_port(), "/control/log?line=cli-followed", "");
  });
  auto r = run({"/usr/bin/timeout", "2", slot_machine_bin(), "logs", "-f", "-n", "0", "--api-port",
                std::to_string(d.api_port())},
               repo.dir());
  writer.join();
  CHECK(r.exit_code == 124);  // still following when timeout stopped it
  CHECK(r.out == "cli-followed\n");
  check_clean_stop(d);  // a follower must not hold up the shutdown
}

TEST_CASE("logs: followers that hang up on a quiet log give their places back (4 at most; a 5th gets 503); "
          "Server-Sent Events when asked for") {
  Site site({{"vA"}});
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  // Opens a follower (as SSE when `sse`), reads what comes first, hangs up.
  auto follow_once = [&](bool sse) {
    return get_first_bytes(d.api_port(), "/logs?tail=5&follow=1",
                           sse ? std::map<std::string, std::string>{{"Accept", "text/event-stream"}}
                               : std::map<std::string, std::string>{});
  };
  const Http first = follow_once(true);
  CHECK(first.status == 200);
  CHECK(first.body.find("event: line\ndata: ") == 0);
  // Nothing is written to the log meanwhile: each hung-up follower must be noticed
  // without a write. Twelve in a row never find the four places taken for long.
  for (int i = 0; i < 12; ++i) {
    CAPTURE(i);
    const auto t0 = std::chrono::steady_clock::now();
    bool accepted = false;
    while (!accepted && std::chrono::steady_clock::now() - t0 < 5s) {
      REQUIRE(http_get(d.api_port(), "/logs?tail=1&follow=0").status == 200);  // not a follower: never refused
      accepted = follow_once(i % 2 == 0).status != 503;
      if (!accepted) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(accepted);
  }
  // Four held open: a fifth is refused with what to do.
  std::vector<std::jthread> holders;
  std::atomic<bool> release{false};
  std::atomic<int> open{0};
  for (int i = 0; i < 4; ++i)
    holders.emplace_back([&] {
      httplib::Client c("127.0.0.1", d.api_port());
      c.set_read_timeout(10, 0);
      bool counted = false;
      c.Get("/logs?tail=1&follow=1", [&](const char*, size_t) {
        if (!counted) ++open;
        counted = true;
        return !release;
      });
    });
  while (open < 4) std::this_thread::sleep_for(20ms);
  Http fifth = http_get(d.api_port(), "/logs?follow=1");
  CHECK(fifth.status == 503);
  CHECK(fifth.body.find("log followers") != std::string::npos);
  release = true;
  http_post(d.internal_port(), "/control/log?line=wake-up", "");  // the holders read it and hang up
  holders.clear();
}

TEST_CASE("logs: a slot log over log_max_bytes is rotated, keeping log_keep files") {
  Site site({{"vA"}}, {{"log_max_bytes", 4096}, {"log_keep", 2}});
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  const fs::path log = d.data_dir() / "slot-a.log";
  for (int round = 0; round < 3; ++round) {
    http_post(d.internal_port(), "/control/log?line=" + std::string(100, char('x' + round)) + "&times=60", "");
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (fs::file_size(log) > 4096 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    CHECK(fs::file_size(log) <= 4096);
  }
  CHECK(read_file(d.data_dir() / "slot-a.log.1").find(std::string(100, 'z')) != std::string::npos);
  CHECK(read_file(d.data_dir() / "slot-a.log.2").find(std::string(100, 'y')) != std::string::npos);
  CHECK_FALSE(fs::exists(d.data_dir() / "slot-a.log.3"));
  // The app goes on writing into the current file.
  http_post(d.internal_port(), "/control/log?line=after-rotation", "");
  CHECK(http_get(d.api_port(), "/logs?tail=1").body == "after-rotation\n");
}
