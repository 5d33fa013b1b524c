#include "api/server.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "api/bodies.h"
#include "api/http_server.h"
#include "api/params.h"
#include "log/json_text.h"
#include "metrics/exposition.h"

// The route table of contract §5: each route parses its request, calls the App and
// maps the outcome to a status and a body (bodies.h). Admission (admission.h) has run
// before any of them.

namespace sm::api {
using nlohmann::json;
using app::OpResult;
using app::OpStatus;

namespace {

constexpr int kMaxApiRuns = 4;  // commands run over the API at once (POST /run without attach)

bool wants_ndjson(const httplib::Request& req) {
  return req.get_header_value("Accept").find("application/x-ndjson") != std::string::npos;
}

/// Answers 200 with `application/x-ndjson`: one progress event per line as `run` makes
/// them, then {"event":"done","status":<the plain call's HTTP status>,"duration_ms"},
/// then the operation's final object (the plain answer's body). A client that goes away
/// does not stop the operation.
void stream_op(httplib::Response& res, std::function<OpResult(const app::App::Progress&)> run,
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

/// An app-scoped route: `path` unprefixed (the only app) or under /apps/NAME/.
std::string scoped(const char* path) { return std::string(R"((?:/apps/([^/]*))?)") + path; }

}  // namespace

std::shared_ptr<app::App> ApiServer::app_of(const httplib::Request& req, httplib::Response& res) const {
  const auto list = apps_.list();
  const bool named = req.matches.size() > 1 && req.matches[1].matched;
  auto found = app::Directory::lookup(*list, named ? std::optional(req.matches[1].str()) : std::nullopt);
  if (found.listed) return found.listed->app;
  json body{{"error", found.error}};
  if (found.status == 400) {
    body["apps"] = json::array();
    for (const auto& a : *list) body["apps"].push_back(a.name);
  }
  reply(res, found.status, body);
  return nullptr;
}

void ApiServer::add_routes() {
  auto& s = *server_;
  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, {{"status", "ok"}});
  });
  s.Get("/apps", [this](const httplib::Request&, httplib::Response& res) {
    json apps = json::array();
    for (const auto& l : *apps_.list()) {
      json a{{"name", l.name}, {"hosts", l.hosts}, {"repo", l.repo.string()}};
      if (l.app) {
        const auto st = l.app->status();
        a["live_commit"] = st.live_commit.empty() ? json(nullptr) : json(st.live_commit);
        a["healthy"] = st.healthy;
        a["operation"] = st.operation.empty() ? json(nullptr) : json(st.operation);
      } else {
        a["live_commit"] = nullptr;
        a["healthy"] = false;
        a["operation"] = nullptr;
        a["error"] = l.error;
      }
      apps.push_back(std::move(a));
    }
    reply(res, 200, {{"apps", std::move(apps)}});
  });
  method_not_allowed(s, "/apps", "GET");
  s.Get(scoped("/status"), [this](const httplib::Request& req, httplib::Response& res) {
    if (auto a = app_of(req, res)) reply(res, 200, status_body(a->status()));
  });
  s.Post(scoped("/deploy"), [this](const httplib::Request& req, httplib::Response& res) {
    auto a = app_of(req, res);
    if (!a) return;
    auto [d, error] = parse_deploy_body(req.body);
    if (!error.empty()) {
      reply(res, 400, {{"success", false}, {"error", error}});
      return;
    }
    const std::string commit = d.commit;
    const std::filesystem::path quarantine = d.quarantine;
    const bool force = d.force;
    const int canary = d.canary_percent;
    app::OpWait wait;
    if (!wait_of(req, res, wait)) return;
    if (wants_ndjson(req)) {
      stream_op(res, [a, commit, quarantine, wait, force, canary](const app::App::Progress& p) {
        return a->deploy(commit, p, wait, quarantine, force, canary);
      }, true);
      return;
    }
    OpResult r = a->deploy(commit, {}, wait, quarantine, force, canary);
    reply(res, http_status(r.status), op_body(r, true));
  });
  // Rollback and restart take no body: the same route, another operation.
  using Op = OpResult (app::App::*)(app::App::Progress, const app::OpWait&);
  auto bodiless_op = [this, &s](const char* path, Op op, bool with_previous) {
    s.Post(scoped(path), [this, op, with_previous](const httplib::Request& req, httplib::Response& res) {
      auto a = app_of(req, res);
      if (!a) return;
      app::OpWait wait;
      if (!wait_of(req, res, wait)) return;
      if (wants_ndjson(req)) {
        stream_op(res, [a, op, wait](const app::App::Progress& p) { return ((*a).*op)(p, wait); }, with_previous);
        return;
      }
      OpResult r = ((*a).*op)({}, wait);
      reply(res, http_status(r.status), op_body(r, with_previous));
    });
  };
  bodiless_op("/rollback", &app::App::rollback, false);
  bodiless_op("/restart", &app::App::restart, true);
  bodiless_op("/promote", &app::App::promote_canary, true);
  method_not_allowed(s, scoped("/promote"), "POST");
  method_not_allowed(s, scoped("/restart"), "POST");
  s.Post(scoped("/cancel"), [this](const httplib::Request& req, httplib::Response& res) {
    auto a = app_of(req, res);
    if (!a) return;
    if (auto c = a->cancel())
      reply(res, 200, {{"cancelled", c->operation}, {"stage", c->stage}});
    else
      reply(res, 409, {{"error", "nothing to cancel: no deploy or rollback is running (or it is "
                                 "already finishing)"}});
  });
  method_not_allowed(s, scoped("/cancel"), "POST");
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
  s.Post("/reload", [this](const httplib::Request&, httplib::Response& res) {
    if (!reload_) {
      reply(res, 501, {{"success", false}, {"error", "this daemon cannot reload its config"}});
      return;
    }
    const ReloadAnswer a = reload_();
    reply(res, a.status, a.body);
  });
  method_not_allowed(s, "/reload", "POST");
  s.Post("/shutdown", [this](const httplib::Request&, httplib::Response& res) {
    if (!shutdown_) {
      reply(res, 501, {{"success", false}, {"error", "this daemon cannot be stopped over its API"}});
      return;
    }
    reply(res, 200, {{"success", true}, {"pid", getpid()}});
    shutdown_();  // drains as SIGTERM does, after this answer has gone
  });
  method_not_allowed(s, "/shutdown", "POST");
  s.Get(scoped("/history"), [this](const httplib::Request& req, httplib::Response& res) {
    auto a = app_of(req, res);
    if (!a) return;
    size_t limit = 0, skip = 0;
    if (count_param(req, res, "limit", 20, 1, 10000, limit) && count_param(req, res, "skip", 0, 0, 100000000, skip))
      reply(res, 200, {{"entries", a->history(limit, skip)}});
  });
  method_not_allowed(s, scoped("/history"), "GET");
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    if (!metrics_) {
      reply(res, 501, {{"error", "this daemon has no metrics"}});
      return;
    }
    res.set_content(metrics_(), metrics::Exposition::kContentType);
  });
  method_not_allowed(s, "/metrics", "GET");
  s.Get(scoped("/logs"), [this](const httplib::Request& req, httplib::Response& res) {
    if (auto a = app_of(req, res)) logs_.serve(req, res, port_, std::move(a));
  });
  method_not_allowed(s, scoped("/logs"), "GET");
  // One-off commands (contract §16): attached, the CLI runs it on its own terminal with
  // what this answers and reports the exit to /run/done; otherwise it runs here and its
  // output streams back as NDJSON, then its exit code.
  s.Post(scoped("/run"), [this](const httplib::Request& req, httplib::Response& res) {
    auto a = app_of(req, res);
    if (!a) return;
    auto [run, error] = parse_run_body(req.body);
    if (!error.empty()) {
      reply(res, 400, {{"error", error}});
      return;
    }
    int status = 0;
    auto where = a->run_place(run.slot, error, status);
    if (!where) {
      reply(res, status, {{"error", error}});
      return;
    }
    // Each runs on one of the API's threads for as long as it takes: a few at a time, so
    // that status, deploys and the dashboard are always answered.
    static std::atomic<int> running{0};
    if (!run.attach && running.load() >= kMaxApiRuns) {
      reply(res, 503, {{"error", fmt::format("{} commands already run over the API; try again when one ends",
                                             kMaxApiRuns)}});
      return;
    }
    if (run.attach) {
      const uint64_t id = a->remember_run(run.command, *where);
      reply(res, 200, {{"run", id},
                       {"cwd", where->cwd.string()},
                       {"env", where->env},
                       {"uid", where->uid},
                       {"gid", where->gid},
                       {"commit", where->commit},
                       {"slot", std::string(1, where->slot)}});
      return;
    }
    ++running;
    struct Running {  // the stream's provider may never be called (a client gone at once)
      ~Running() { --running; }
    };
    res.set_chunked_content_provider(
        "application/x-ndjson", [a, run = run, where = *where, held = std::make_shared<Running>()](size_t, httplib::DataSink& sink) {
          bool connected = true;
          auto send = [&](const json& j) {
            const std::string line = log::json_text(j) + "\n";
            return connected = connected && sink.write(line.data(), line.size());
          };
          send({{"event", "started"}, {"commit", where.commit}, {"slot", std::string(1, where.slot)}});
          const int code = a->run_here(run.command, where, [&](const std::string& l) {
            return send({{"event", "output"}, {"line", l}});
          });
          send({{"event", "exit"}, {"exit_code", code}});
          if (connected) sink.done();
          return connected;
        });
  });
  method_not_allowed(s, scoped("/run"), "POST");
  s.Post(scoped("/run/done"), [this](const httplib::Request& req, httplib::Response& res) {
    auto a = app_of(req, res);
    if (!a) return;
    const json j = json::parse(req.body, nullptr, false);
    if (!j.is_object() || !j.contains("run") || !j["run"].is_number_unsigned() || !j.contains("exit_code") ||
        !j["exit_code"].is_number_integer()) {
      reply(res, 400, {{"error", "expected {\"run\": ID, \"exit_code\": N}"}});
      return;
    }
    if (!a->ran(j["run"].get<uint64_t>(), j["exit_code"].get<int>()))
      reply(res, 404, {{"error", fmt::format("no run {} is waiting for its exit code", j["run"].get<uint64_t>())}});
    else
      reply(res, 200, {{"success", true}});
  });
  method_not_allowed(s, scoped("/run/done"), "POST");
  // Maintenance (contract §14).
  s.Post(scoped("/maintenance"), [this](const httplib::Request& req, httplib::Response& res) {
    auto a = app_of(req, res);
    if (!a) return;
    auto [m, error] = parse_maintenance_body(req.body);
    if (!error.empty()) {
      reply(res, 400, {{"success", false}, {"error", error}});
      return;
    }
    int status = 0;
    if (auto err = a->set_maintenance(m, status); !err.empty()) {
      reply(res, status, {{"success", false}, {"error", err}});
      return;
    }
    reply(res, 200, {{"success", true}, {"maintenance", status_body(a->status())["maintenance"]}});
  });
  method_not_allowed(s, scoped("/maintenance"), "POST");
  s.Post(scoped("/pause"), [this](const httplib::Request& req, httplib::Response& res) {
    auto a = app_of(req, res);
    if (!a) return;
    int timeout_s = 30;
    if (!req.body.empty()) {
      const json j = json::parse(req.body, nullptr, false);
      bool ok = j.is_object() && (j.empty() || (j.size() == 1 && j.contains("timeout_s")));
      if (ok && j.contains("timeout_s")) {
        ok = j["timeout_s"].is_number_integer() && j["timeout_s"].get<long long>() >= 1 &&
             j["timeout_s"].get<long long>() <= 600;
        if (ok) timeout_s = j["timeout_s"].get<int>();
      }
      if (!ok) {
        reply(res, 400, {{"success", false}, {"error", "expected {\"timeout_s\": N} with N 1-600 (default 30)"}});
        return;
      }
    }
    int status = 0;
    if (auto err = a->pause(timeout_s, status); !err.empty()) {
      reply(res, status, {{"success", false}, {"error", err}});
      return;
    }
    const auto st = a->status();
    reply(res, 200, {{"success", true}, {"paused_since", st.paused ? st.paused->since : ""}, {"timeout_s", timeout_s}});
  });
  method_not_allowed(s, scoped("/pause"), "POST");
  s.Post(scoped("/resume"), [this](const httplib::Request& req, httplib::Response& res) {
    auto a = app_of(req, res);
    if (!a) return;
    const auto before = a->status().paused;
    int status = 0;
    if (auto err = a->resume(status); !err.empty()) {
      reply(res, status, {{"success", false}, {"error", err}});
      return;
    }
    reply(res, 200, {{"success", true}, {"released", before ? before->held : 0}});
  });
  method_not_allowed(s, scoped("/resume"), "POST");
  method_not_allowed(s, scoped("/deploy"), "POST");
  method_not_allowed(s, scoped("/rollback"), "POST");
  method_not_allowed(s, scoped("/status"), "GET");
}

}  // namespace sm::api
