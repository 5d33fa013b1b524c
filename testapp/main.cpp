// testapp: the app the spec suite deploys. Serves `GET /` on PORT and its control and
// health endpoints on INTERNAL_PORT (one server when they are equal).
//
// Flags: --start-unhealthy, --boot-delay SECONDS, --ignore-sigterm,
//        --spawn-orphan (start a setsid'd grandchild that sleeps forever).
// VERSION comes from the VERSION file in cwd (the slot), else the VERSION env var.

#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace {

std::atomic<bool> healthy{true};

std::string env_or(const char* key, const std::string& fallback) {
  const char* v = std::getenv(key);
  return v ? v : fallback;
}

std::string version() {
  std::ifstream f("VERSION");
  std::string v;
  if (f && std::getline(f, v) && !v.empty()) return v;
  return env_or("VERSION", "unknown");
}

void add_public_routes(httplib::Server& s, const std::string& ver) {
  s.Get("/", [ver](const httplib::Request&, httplib::Response& res) {
    res.set_content("hello from " + ver + " (slot " + env_or("SLOT_MACHINE_SLOT", "?") + ", pid " +
                        std::to_string(getpid()) + ")\n",
                    "text/plain");
  });
  s.Get("/headers", [](const httplib::Request& req, httplib::Response& res) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : req.headers) j[k] = v;
    res.set_content(j.dump(), "application/json");
  });
  // Server-Sent Events: `n` events (default 3), `ms` apart (default 200), each flushed.
  s.Get("/events", [](const httplib::Request& req, httplib::Response& res) {
    int n = req.has_param("n") ? std::atoi(req.get_param_value("n").c_str()) : 3;
    int ms = req.has_param("ms") ? std::atoi(req.get_param_value("ms").c_str()) : 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [n, ms](size_t i, httplib::DataSink& sink) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      static thread_local int sent = 0;
      if (i == 0) sent = 0;
      if (sent >= n) {
        sink.done();
        return true;
      }
      std::string ev = "data: event " + std::to_string(sent++) + "\n\n";
      sink.write(ev.data(), ev.size());
      return true;
    });
  });
  s.Get("/slow", [](const httplib::Request& req, httplib::Response& res) {
    int ms = req.has_param("ms") ? std::atoi(req.get_param_value("ms").c_str()) : 1000;
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    res.set_content("slow done after " + std::to_string(ms) + " ms\n", "text/plain");
  });
}

void add_internal_routes(httplib::Server& s, const std::string& ver) {
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.status = healthy ? 200 : 503;
    res.set_content(healthy ? "ok\n" : "unhealthy\n", "text/plain");
  });
  s.Post("/control/crash", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("crashing\n", "text/plain");
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      _exit(1);
    }).detach();
  });
  s.Post("/control/hang", [](const httplib::Request&, httplib::Response& res) {
    signal(SIGTERM, SIG_IGN);
    res.set_content("ignoring SIGTERM from now on\n", "text/plain");
  });
  s.Post("/control/unhealthy", [](const httplib::Request&, httplib::Response& res) {
    healthy = false;
    res.set_content("unhealthy\n", "text/plain");
  });
  s.Post("/control/healthy", [](const httplib::Request&, httplib::Response& res) {
    healthy = true;
    res.set_content("healthy\n", "text/plain");
  });
  s.Get("/env", [](const httplib::Request& req, httplib::Response& res) {
    std::string key = req.get_param_value("key");
    const char* v = std::getenv(key.c_str());
    if (!v) {
      res.status = 404;
      res.set_content("unset\n", "text/plain");
      return;
    }
    res.set_content(v, "text/plain");
  });
  s.Get("/whoami", [ver](const httplib::Request&, httplib::Response& res) {
    nlohmann::json j{{"pid", getpid()},
                     {"pgid", getpgrp()},
                     {"slot", env_or("SLOT_MACHINE_SLOT", "")},
                     {"commit", env_or("SLOT_MACHINE_COMMIT", "")},
                     {"version", ver}};
    res.set_content(j.dump(), "application/json");
  });
}

/// Forks a grandchild that leaves the process group (setsid) and sleeps forever:
/// what a daemonizing helper does. slot-machine must still clean it up.
void spawn_orphan() {
  pid_t child = fork();
  if (child == 0) {
    setsid();
    if (fork() == 0) {
      execl("/bin/sleep", "sleep", "3600", static_cast<char*>(nullptr));
      _exit(127);
    }
    _exit(0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool start_unhealthy = false, ignore_sigterm = false, orphan = false;
  double boot_delay = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--start-unhealthy") start_unhealthy = true;
    else if (a == "--ignore-sigterm") ignore_sigterm = true;
    else if (a == "--spawn-orphan") orphan = true;
    else if (a == "--boot-delay" && i + 1 < argc) boot_delay = std::atof(argv[++i]);
    else {
      std::cerr << "testapp: unknown argument " << a << "\n";
      return 2;
    }
  }
  if (ignore_sigterm) signal(SIGTERM, SIG_IGN);
  healthy = !start_unhealthy;
  if (orphan) spawn_orphan();

  const int port = std::atoi(env_or("PORT", "3000").c_str());
  const int internal = std::atoi(env_or("INTERNAL_PORT", std::to_string(port)).c_str());
  const std::string ver = version();
  std::cout << "testapp " << ver << " pid " << getpid() << " booting (PORT=" << port
            << " INTERNAL_PORT=" << internal << ")" << std::endl;
  if (boot_delay > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(boot_delay * 1000)));

  httplib::Server pub, priv;
  // Like a typical app server: SO_REUSEADDR only (httplib's default SO_REUSEPORT would let
  // two copies share a port and hide a drain that did not happen).
  for (httplib::Server* s : {&pub, &priv})
    s->set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
  add_public_routes(pub, ver);
  httplib::Server& ctl = internal == port ? pub : priv;
  add_internal_routes(ctl, ver);

  if (!pub.bind_to_port("127.0.0.1", port)) {
    std::cerr << "testapp: cannot bind 127.0.0.1:" << port << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  if (internal != port && !priv.bind_to_port("127.0.0.1", internal)) {
    std::cerr << "testapp: cannot bind 127.0.0.1:" << internal << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  std::cout << "testapp " << ver << " listening" << std::endl;
  std::thread other;
  if (internal != port) other = std::thread([&] { priv.listen_after_bind(); });
  pub.listen_after_bind();
  if (other.joinable()) other.join();
  return 0;
}
