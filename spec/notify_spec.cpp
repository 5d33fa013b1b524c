// Contract §9: notifications. Targets get the daemon's events as signed JSON (or Slack
// text) POSTs from an outbox that retries, survives a restart and never delays a deploy.

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>

#include "apps_support.h"
#include "harness.h"

using namespace spec;

namespace {

const std::string kNotifySecret = "spec-notify-secret-0123456789";

std::string notify_signature(const std::string& body) { return spec::hmac_hex(kNotifySecret, body); }

/// A notification receiver on 127.0.0.1:port: records every POST; `/fail` answers
/// 500 while `failing` is above 0 (counting down), `/hang` waits 20 s.
class Receiver {
 public:
  struct Got {
    std::string path, event, delivery, signature, body;
  };
  explicit Receiver(int port) : port_(port) {
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      if (req.path == "/hang") std::this_thread::sleep_for(20s);
      std::lock_guard lock(mu_);
      if (req.path == "/fail" && failing > 0) {
        --failing;
        res.status = 500;
        return;
      }
      got_.push_back({req.path, req.get_header_value("X-Slot-Machine-Event"),
                      req.get_header_value("X-Slot-Machine-Delivery"), req.get_header_value("X-Slot-Machine-Signature"),
                      req.body});
      res.status = 204;
    });
    thread_ = std::jthread([this] { server_.listen("127.0.0.1", port_); });
    while (!server_.is_running()) std::this_thread::sleep_for(5ms);
  }
  ~Receiver() { server_.stop(); }
  std::string url(const std::string& path) const { return fmt::format("http://127.0.0.1:{}{}", port_, path); }
  std::vector<Got> got() {
    std::lock_guard lock(mu_);
    return got_;
  }
  /// Waits until `path` got a notification of `event`; returns it.
  std::optional<Got> wait_for(const std::string& path, const std::string& event, std::chrono::seconds timeout = 20s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (const auto& g : got())
        if (g.path == path && g.event == event) return g;
      if (std::chrono::steady_clock::now() > until) return std::nullopt;
      std::this_thread::sleep_for(20ms);
    }
  }
  int count(const std::string& path) {
    int n = 0;
    for (const auto& g : got()) n += g.path == path;
    return n;
  }
  std::atomic<int> failing{0};

 private:
  int port_;
  httplib::Server server_;
  std::mutex mu_;
  std::vector<Got> got_;
  std::jthread thread_;
};

fs::path secret_file(const AppRepo& repo) { return spec::secret_file(repo, "notify.secret", kNotifySecret); }

}  // namespace

TEST_CASE("notify: every event reaches a signed JSON target with the contract's fields; a Slack target gets text; "
          "events filter") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  const std::string v2 = repo.commit("v2");
  const std::string bad = repo.commit("v3", "--no-such-flag");
  Receiver rx(free_port());
  repo.write_config({{"notify",
                      {{{"url", rx.url("/json")}, {"secret_file", secret_file(repo).string()}},
                       {{"url", rx.url("/slack")}, {"format", "slack"}, {"events", {"deploy_failed"}}}}}});
  Daemon d(repo, kProxyMode);
  auto started = rx.wait_for("/json", "daemon_started");
  REQUIRE(started);
  REQUIRE(d.deploy(v1).status == 200);
  REQUIRE(d.deploy(v2).status == 200);
  REQUIRE(d.rollback().status == 200);  // live v1 again, in slot a
  CHECK(d.deploy(bad).status == 500);

  auto begun = rx.wait_for("/json", "deploy_started");
  auto ok = rx.wait_for("/json", "deploy_succeeded");
  auto failed = rx.wait_for("/json", "deploy_failed");
  auto rolled = rx.wait_for("/json", "rollback");
  REQUIRE(begun);
  REQUIRE(ok);
  REQUIRE(failed);
  REQUIRE(rolled);
  for (const auto* g : {&*started, &*begun, &*ok, &*failed, &*rolled}) {
    CHECK(g->signature == "sha256=" + notify_signature(g->body));
    const json body = json::parse(g->body);
    for (const char* key : {"event", "time", "commit", "slot", "previous_commit", "duration_ms", "stage", "error", "host"})
      CHECK_MESSAGE(body.contains(key), key << " in " << g->body);
    CHECK(body["event"] == g->event);
  }
  const json first = json::parse(begun->body);
  CHECK(first["commit"] == v1);
  const json succeeded = json::parse(ok->body);
  CHECK(succeeded["commit"] == v1);
  CHECK(succeeded["duration_ms"].get<long long>() > 0);
  const json failure = json::parse(failed->body);
  CHECK(failure["commit"] == bad);
  CHECK(failure["previous_commit"] == v1);
  CHECK(failure["stage"] == "health");
  CHECK_FALSE(failure["error"].get<std::string>().empty());
  CHECK(json::parse(rolled->body)["commit"] == v1);

  // Delivery ids are unique; the Slack target got only the failure, as text, unsigned.
  std::set<std::string> ids;
  for (const auto& g : rx.got()) ids.insert(g.delivery);
  CHECK(ids.size() == rx.got().size());
  auto slack = rx.wait_for("/slack", "deploy_failed");
  REQUIRE(slack);
  CHECK(rx.count("/slack") == 1);
  CHECK(slack->signature.empty());
  const json text = json::parse(slack->body);
  CHECK(text.size() == 1);
  CHECK(text["text"].get<std::string>().find("the deploy of " + bad.substr(0, 12) + " failed at health") !=
        std::string::npos);
  check_clean_stop(d);
}

TEST_CASE("notify: a target answering 500 is retried until it takes it; a hanging one never delays a deploy; what "
          "is pending when the daemon stops is delivered after it starts again") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  const std::string v2 = repo.commit("v2");
  const int down_port = free_port();
  Receiver rx(free_port());
  rx.failing = 2;
  repo.write_config({{"notify",
                      {{{"url", rx.url("/fail")}, {"events", {"deploy_succeeded"}}},
                       {{"url", rx.url("/hang")}, {"events", {"deploy_started"}}},
                       {{"url", fmt::format("http://127.0.0.1:{}/later", down_port)}, {"events", {"deploy_succeeded"}}}}}});
  Daemon d(repo, kProxyMode);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(d.deploy(v1).status == 200);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK_MESSAGE(took < 10s, "a deploy with a hanging notify target took "
                                << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  auto retried = rx.wait_for("/fail", "deploy_succeeded", 30s);
  REQUIRE(retried);
  CHECK(rx.failing == 0);
  CHECK(d.log().find("failed (try 1 of 6): it answered 500; trying again in 2 s") != std::string::npos);
  CHECK(d.log().find("failed (try 2 of 6)") != std::string::npos);

  // The third target is down: its notification waits in the outbox across a restart.
  REQUIRE(d.stop() == 0);
  int waiting = 0;
  for (const auto& e : fs::directory_iterator(d.data_dir() / "outbox")) {
    const std::string text = read_file(e.path());
    if (text.find(fmt::format("127.0.0.1:{}/later", down_port)) != std::string::npos) ++waiting;
    CHECK((fs::status(e.path()).permissions() & fs::perms::others_read) == fs::perms::none);
  }
  CHECK(waiting == 1);
  Receiver later(down_port);
  d.restart();
  auto delivered = later.wait_for("/later", "deploy_succeeded", 30s);
  REQUIRE(delivered);
  CHECK(json::parse(delivered->body)["commit"] == v1);
  CHECK(d.log().find("left from before; delivering") != std::string::npos);
  REQUIRE(d.deploy(v2).status == 200);
  check_clean_stop(d);
}

TEST_CASE("notify and github: bad targets are refused at start, naming the entry and field") {
  AppRepo repo;
  repo.commit("v1");
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"notify", json::array({"http://x"})}}, "\"notify[0]\" must be an object"},
      {{{"notify", "http://x"}}, "\"notify\" must be an array"},
      {{{"notify", {{{"url", "ftp://x"}}}}}, "\"notify[0].url\" must be an http:// or https:// URL"},
      {{{"notify", {{{"url", "http://x"}}, {{"url", "http://y"}, {"events", {"deployed"}}}}}},
       "\"notify[1].events\": \"deployed\" is not an event"},
      {{{"notify", {{{"url", "http://x"}, {"format", "xml"}}}}}, "\"notify[0].format\" must be \"json\" or \"slack\""},
      {{{"notify", {{{"url", "http://x"}, {"secret", "s"}}}}}, "\"notify[0]\" does not take \"secret\""},
      {{{"notify", {{{"url", "http://x"}, {"secret_file", "missing"}}}}}, "\"notify[0].secret_file\": cannot read"},
      {{{"github", {{"repo", "app"}, {"token_file", "t"}}}}, "\"github.repo\" must be \"owner/name\""},
      {{{"github", {{"repo", "owner/app"}}}}, "\"github.token_file\" is required"},
      {{{"github", {{"repo", "owner/app"}, {"token_file", "missing"}}}}, "\"github.token_file\": cannot read"},
      {{{"github", {{"repo", "owner/app"}, {"token_file", "t"}, {"api_url", "api.github.com"}}}},
       "\"github.api_url\" must be an http(s):// URL"},
  };
  for (const auto& [overrides, says] : cases) {
    auto r = start_refused(repo, overrides);
    CHECK_MESSAGE(r.exit_code == 2, overrides.dump() << r.err);
    CHECK_MESSAGE(r.err.find(says) != std::string::npos, r.err);
  }
}

TEST_CASE("github: each deploy creates a deployment of its commit and posts in_progress, then success or failure, "
          "with the token, to the API URL") {
  AppRepo repo;
  const std::string v1 = repo.commit("v1");
  const std::string bad = repo.commit("v2", "--no-such-flag");
  struct Call {
    std::string method, path, auth, accept;
    json body;
  };
  std::mutex mu;
  std::vector<Call> calls;
  int next_id = 41;
  httplib::Server api;
  api.Post(".*", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    calls.push_back({req.method, req.path, req.get_header_value("Authorization"), req.get_header_value("Accept"),
                     json::parse(req.body, nullptr, false)});
    res.status = 201;
    if (req.path.ends_with("/deployments")) res.set_content(json{{"id", ++next_id}}.dump(), "application/json");
    else res.set_content("{}", "application/json");
  });
  const int port = free_port();
  std::jthread serving([&] { api.listen("127.0.0.1", port); });
  while (!api.is_running()) std::this_thread::sleep_for(5ms);
  const std::string token = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
  secret_file(repo, "gh.token", token);
  repo.write_config({{"github",
                      {{"repo", "owner/app"},
                       {"token_file", (repo.home() / "gh.token").string()},
                       {"api_url", fmt::format("http://127.0.0.1:{}/api/v3/", port)}}}});
  Daemon d(repo, kProxyMode);
  REQUIRE(d.deploy(v1).status == 200);
  CHECK(d.deploy(bad).status == 500);
  auto snapshot = [&] {
    std::lock_guard lock(mu);
    return calls;
  };
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (snapshot().size() < 6 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
  const auto got = snapshot();
  REQUIRE(got.size() == 6);
  for (const auto& c : got) {
    CHECK(c.method == "POST");
    CHECK(c.auth == "Bearer " + token);
    CHECK(c.accept == "application/vnd.github+json");
  }
  CHECK(got[0].path == "/api/v3/repos/owner/app/deployments");
  CHECK(got[0].body["ref"] == v1);
  CHECK(got[0].body["environment"] == "production");
  CHECK(got[0].body["auto_merge"] == false);
  CHECK(got[1].path == "/api/v3/repos/owner/app/deployments/42/statuses");
  CHECK(got[1].body["state"] == "in_progress");
  CHECK(got[2].path == "/api/v3/repos/owner/app/deployments/42/statuses");
  CHECK(got[2].body["state"] == "success");
  CHECK(got[3].body["ref"] == bad);
  CHECK(got[4].path == "/api/v3/repos/owner/app/deployments/43/statuses");
  CHECK(got[5].path == "/api/v3/repos/owner/app/deployments/43/statuses");
  CHECK(got[5].body["state"] == "failure");
  CHECK(got[5].body["description"].get<std::string>().size() <= 140);
  check_clean_stop(d);
  api.stop();
}

TEST_CASE("notify with several apps: every app's notices go to the server's targets, each naming its app") {
  const int port = free_port();
  Receiver rx(port);
  AppRepo blog, shop, server;
  for (auto* a : {&blog, &shop}) a->write_config();
  const std::string b1 = blog.commit("v1 of blog"), s1 = shop.commit("v1 of shop");
  json c = server_fields(server);
  c["notify"] = {{{"url", rx.url("/json")}}, {{"url", rx.url("/slack")}, {"format", "slack"},
                                              {"events", {"deploy_succeeded"}}}};
  c["apps"] = {{"blog", app_entry(blog, {"blog.test"})}, {"shop", app_entry(shop, {"shop.test"})}};
  std::ofstream(server.config_path()) << c.dump(2);
  Daemon d(server, kProxyMode);
  REQUIRE(http_post(d.api_port(), "/apps/blog/deploy", json{{"commit", b1}}.dump()).status == 200);
  REQUIRE(http_post(d.api_port(), "/apps/shop/deploy", json{{"commit", s1}}.dump()).status == 200);
  auto app_of = [&](const std::string& commit) {
    const auto until = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      for (const auto& g : rx.got()) {
        const json b = json::parse(g.body, nullptr, false);
        if (g.path == "/json" && g.event == "deploy_succeeded" && b.value("commit", "") == commit)
          return b.value("app", std::string("(none)"));
      }
      if (std::chrono::steady_clock::now() > until) return std::string("(not sent)");
      std::this_thread::sleep_for(20ms);
    }
  };
  CHECK(app_of(b1) == "blog");
  CHECK(app_of(s1) == "shop");
  const auto slack = rx.wait_for("/slack", "deploy_succeeded");
  REQUIRE(slack);
  CHECK_MESSAGE((slack->body.find("/blog: deployed") != std::string::npos ||
                 slack->body.find("/shop: deployed") != std::string::npos),
                slack->body);
  CHECK(fs::exists(server.data_dir() / "apps" / "blog" / "outbox"));
}
