#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>

#include "notify/message.h"
#include "notify/outbox.h"
#include "test_support.h"

using namespace sm::notify;
using sm::app::Event;
using sm::app::EventKind;
using nlohmann::json;

namespace {
Event finished(const json& fields) { return {EventKind::Finished, 1, fields}; }

/// Waits up to 5 s for `pred`.
template <typename P>
bool eventually(P pred) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!pred() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return pred();
}
}  // namespace

TEST_CASE("notice_of: which events notify, with the contract's fields") {
  auto ok = notice_of(finished({{"action", "deploy"}, {"result", "ok"}, {"commit", "c"}, {"slot", "a"},
                                {"previous_commit", "p"}, {"duration_ms", 42}}),
                      "host1");
  REQUIRE(ok);
  CHECK(ok->event == "deploy_succeeded");
  for (const char* key : {"event", "time", "commit", "slot", "previous_commit", "duration_ms", "stage", "error", "host"})
    CHECK_MESSAGE(ok->fields.contains(key), key);
  CHECK(ok->fields["duration_ms"] == 42);
  CHECK(ok->fields["host"] == "host1");
  auto failed = notice_of(finished({{"action", "deploy"}, {"result", "failed"}, {"stage", "health"}, {"error", "e"}}), "h");
  REQUIRE(failed);
  CHECK(failed->event == "deploy_failed");
  CHECK(failed->fields["stage"] == "health");
  CHECK(notice_of(finished({{"action", "deploy"}, {"result", "cancelled"}}), "h")->event == "deploy_failed");
  CHECK(notice_of(finished({{"action", "rollback"}, {"result", "ok"}}), "h")->event == "rollback");
  auto automatic = notice_of(finished({{"action", "auto-rollback"}, {"result", "ok"}, {"reason", "exited"}}), "h");
  CHECK(automatic->event == "auto_rollback");
  CHECK(automatic->fields["error"] == "exited");
  CHECK(notice_of(finished({{"action", "restart"}, {"result", "ok"}, {"reason", "crashed"}}), "h")->event ==
        "app_restarted");
  CHECK(notice_of({EventKind::Started, 1, {{"operation", "deploy"}, {"commit", "c"}}}, "h")->event == "deploy_started");
  auto crash = notice_of({EventKind::AppExited, 0, {{"slot", "a"}, {"commit", "c"}, {"detail", "exit 3"}}}, "h");
  CHECK(crash->event == "app_crashed");
  CHECK(crash->fields["error"] == "exit 3");
  CHECK_FALSE(notice_of({EventKind::Stage, 1, {{"operation", "deploy"}, {"stage", "setup"}}}, "h"));
  CHECK_FALSE(notice_of({EventKind::LiveProbe, 0, {}}, "h"));
  // Workers and cron (contract §16): a worker's exit, a failed run; a good run is quiet.
  auto worker = notice_of(
      {EventKind::WorkerExited, 0, {{"worker", "jobs"}, {"slot", "a"}, {"commit", "c"}, {"detail", "exited with status 1"}}},
      "h");
  CHECK(worker->event == "worker_crashed");
  CHECK(worker->fields["worker"] == "jobs");
  CHECK(worker->fields["error"] == "exited with status 1");
  CHECK(json::parse(render(*worker, "slack"))["text"] == "h: worker jobs (c) exited: exited with status 1");
  auto cron = notice_of(finished({{"action", "cron"}, {"result", "failed"}, {"job", "report"}, {"exit_code", 3},
                                  {"commit", "c"}, {"detail", "exited with status 3"}}),
                        "h");
  CHECK(cron->event == "cron_failed");
  CHECK(cron->fields["job"] == "report");
  CHECK(cron->fields["exit_code"] == 3);
  CHECK(json::parse(render(*cron, "slack"))["text"] == "h: cron job report (c) failed: exited with status 3");
  CHECK_FALSE(notice_of(finished({{"action", "cron"}, {"result", "ok"}, {"job", "report"}}), "h"));
  CHECK_FALSE(notice_of(finished({{"action", "worker-restart"}, {"result", "ok"}}), "h"));
  // Canary (contract §14), notified like deploys.
  CHECK(notice_of(finished({{"action", "canary"}, {"result", "ok"}}), "h")->event == "canary_started");
  CHECK(notice_of(finished({{"action", "canary"}, {"result", "failed"}}), "h")->event == "deploy_failed");
  CHECK(notice_of(finished({{"action", "promote"}, {"result", "ok"}}), "h")->event == "canary_promoted");
  auto abort = notice_of(finished({{"action", "canary-abort"}, {"result", "ok"}, {"commit", "c2"},
                                   {"previous_commit", "c1"}, {"reason", "rollback requested"}}),
                         "h");
  CHECK(abort->event == "canary_aborted");
  CHECK(json::parse(render(*abort, "slack"))["text"] == "h: the canary c2 ended; everyone is on c1: rollback requested");
  CHECK(daemon_started("c", "a", "h").fields["event"] == "daemon_started");
}

TEST_CASE("render: json is the fields, slack a sentence in {\"text\"}") {
  Notice n = *notice_of(finished({{"action", "deploy"}, {"result", "ok"}, {"commit", std::string(40, 'a')},
                                  {"slot", "b"}, {"duration_ms", 7}}),
                        "web1");
  CHECK(json::parse(render(n, "json")) == n.fields);
  const json slack = json::parse(render(n, "slack"));
  CHECK(slack.size() == 1);
  CHECK(slack["text"] == "web1: deployed aaaaaaaaaaaa (slot b) in 7 ms; previous nothing");
}

TEST_CASE("retry_delay: 2, 4, 8, 16, 32 s: kTries tries over more than a minute") {
  CHECK(retry_delay(1) == std::chrono::seconds(2));
  CHECK(retry_delay(5) == std::chrono::seconds(32));
  long long total = 0;
  for (int i = 1; i < kTries; ++i) total += retry_delay(i).count();
  CHECK(kTries >= 5);
  CHECK(total >= 60);
}

TEST_CASE("Outbox: filters by event, keeps what it could not deliver on disk, delivers it after a restart") {
  sm::test::TempDir t;
  sm::config::Config::NotifyTarget only_failures{"http://127.0.0.1:1/hook", {"deploy_failed"}, {}, "json"};
  sm::config::Config::NotifyTarget everything{"http://127.0.0.1:2/hook", {}, {}, "slack"};
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> sent;  // url, event
  std::atomic<bool> up{false};
  auto send = [&](const Target& target, const std::string& event, const std::string& id, const std::string& body) {
    CHECK(id.size() == 30);
    CHECK_FALSE(body.empty());
    if (!up) return std::string("it answered 500");
    std::lock_guard lock(mu);
    sent.emplace_back(target.config.url, event);
    return std::string();
  };
  auto notice = [](const char* result) {
    return *notice_of(finished({{"action", "deploy"}, {"result", result}}), "h");
  };
  {
    Outbox box(t.path, {{only_failures, ""}, {everything, ""}}, send);
    box.post_notice(notice("ok"));      // the second target only
    box.post_notice(notice("failed"));  // both
    // Each first try fails; all three wait on disk for their second.
    REQUIRE(eventually([&] {
      int files = 0;
      for (const auto& e : std::filesystem::directory_iterator(t.path)) files += e.path().extension() == ".json";
      return files == 3;
    }));
    box.stop();
  }
  up = true;
  {
    Outbox box(t.path, {{only_failures, ""}, {everything, ""}}, send);
    REQUIRE(eventually([&] { return box.delivered() == 3; }));
    box.stop();
  }
  std::lock_guard lock(mu);
  CHECK(sent.size() == 3);
  int to_first = 0;
  for (const auto& [url, event] : sent)
    if (url == only_failures.url) {
      ++to_first;
      CHECK(event == "deploy_failed");
    }
  CHECK(to_first == 1);
  CHECK(std::filesystem::is_empty(t.path));
}

TEST_CASE("Outbox: a notification nobody takes is dropped after kTries, with its file") {
  sm::test::TempDir t;
  sm::config::Config::NotifyTarget target{"http://127.0.0.1:1/hook", {}, {}, "json"};
  // Leftovers for a URL no target has any more are dropped at start.
  std::ofstream(t.path / "0000000000001-00.json") << R"({"url":"http://elsewhere/","event":"rollback","body":"{}"})";
  std::ofstream(t.path / "0000000000002-00.json") << "not json";
  // One at its last try: fails once more and is given up.
  std::ofstream(t.path / "0000000000003-00.json")
      << R"({"url":"http://127.0.0.1:1/hook","event":"rollback","body":"{}","tries":)" << kTries - 1 << "}";
  std::atomic<int> tries{0};
  Outbox box(t.path, {{target, ""}}, [&](const Target&, const std::string&, const std::string&, const std::string&) {
    ++tries;
    return std::string("no answer: Connection");
  });
  REQUIRE(eventually([&] { return box.dropped() == 1; }));
  box.stop();
  CHECK(tries == 1);
  CHECK(std::filesystem::is_empty(t.path));
}
