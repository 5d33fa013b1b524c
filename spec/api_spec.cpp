// Contract §5: the HTTP API and bad input (4xx, no state change, never a shell).

#include <doctest/doctest.h>

#include "harness.h"

using namespace spec;

namespace {
json stable(json s) {  // the parts of /status a refused request must not change
  return {s["live_slot"], s["live_commit"], s["previous_slot"], s["previous_commit"],
          s["last_deploy_time"], s["live_pid"]};
}
}  // namespace

TEST_CASE("GET / answers ok; unknown paths 404; wrong methods 405, all JSON") {
  Site site({{"v1"}});
  Daemon& d = site.d;
  auto root = http_get(d.api_port(), "/");
  CHECK(root.status == 200);
  CHECK(root.json_body() == json{{"status", "ok"}});
  auto missing = http_get(d.api_port(), "/nope");
  CHECK(missing.status == 404);
  CHECK(missing.json_body()["error"].is_string());
  auto wrong = http_get(d.api_port(), "/deploy");
  CHECK(wrong.status == 405);
  CHECK(wrong.json_body()["error"].get<std::string>().find("POST") != std::string::npos);
  CHECK(http_post(d.api_port(), "/status", "{}").status == 405);
}

TEST_CASE("bad deploy requests are 4xx JSON errors and change nothing") {
  Site site({{"vA"}});
  AppRepo& repo = site.repo;
  Daemon& d = site.d;
  const std::string a = site.commits[0];
  REQUIRE(d.deploy(a).status == 200);
  const json before = stable(d.status());
  struct Case {
    std::string body;
    int status;
    std::string expect;
  } cases[] = {
      {"", 400, "missing request body"},
      {"{nope", 400, "not valid JSON"},
      {"[1]", 400, "JSON object"},
      {"{}", 400, "missing \"commit\""},
      {R"({"commit": 42})", 400, "must be a string"},
      {R"({"commit": null})", 400, "must be a string"},
      {R"({"commit": ""})", 400, "must not be empty"},
      {R"({"commit": "--upload-pack=evil"})", 400, "must not start with '-'"},
      {R"({"commit": "-"})", 400, "must not start with '-'"},
      {R"({"commit": "deadbeefdeadbeef"})", 404, "unknown commit"},
      {R"({"commit": "no-such-branch"})", 404, "unknown commit"},
      {R"({"commit": "HEAD:VERSION"})", 400, "does not name a commit"},
      {R"({"commit": "a\nb"})", 400, "control characters"},
      {R"x({"commit": "$(touch pwned)"})x", 400, "cannot resolve"},
      {R"({"commit": "`touch pwned`; touch pwned"})", 400, "cannot resolve"},
      {R"({"commit": 1e999})", 400, "not valid JSON"},  // a number too large (found by fuzzing)
      {"{\"commit\": \"\xff\xfe\"}", 400, "not valid JSON"},  // invalid UTF-8 in JSON
      {R"({"commit": ":/fix"})", 400, "searching commit messages"},
  };
  for (const auto& c : cases) {
    auto r = http_post(d.api_port(), "/deploy", c.body);
    CHECK_MESSAGE(r.status == c.status, c.body << " -> " << r.status << " " << r.body);
    auto err = r.json_body()["error"];
    CHECK_MESSAGE((err.is_string() && err.get<std::string>().find(c.expect) != std::string::npos),
                  c.body << " -> " << r.body);
  }
  CHECK(stable(d.status()) == before);
  CHECK_FALSE(fs::exists(repo.dir() / "pwned"));
  CHECK_FALSE(fs::exists(repo.home() / "pwned"));
  CHECK_FALSE(fs::exists(repo.data_dir() / "slot-a" / "pwned"));
  CHECK_FALSE(fs::exists(repo.data_dir() / "slot-b" / "pwned"));
}

TEST_CASE("invalid UTF-8 in a query parameter gets 400, and the daemon keeps serving") {
  Site site({{"vA"}});
  Daemon& d = site.d;
  // Found by fuzz/api_fuzz.cpp: the error message quoted the value, and turning it into
  // JSON threw, which ended the daemon.
  auto r = raw_exchange(d.api_port(), "GET /history?limit=%C2%FF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK_MESSAGE(r.rfind("HTTP/1.1 400", 0) == 0, r);
  CHECK(r.find("limit must be a whole number") != std::string::npos);
  r = raw_exchange(d.api_port(), "GET /logs?slot=\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 4", 0) == 0);
  CHECK(http_get(d.api_port(), "/status").status == 200);
}

TEST_CASE("request bodies over 1 MiB get 413") {
  Site site({{"v1"}});
  Daemon& d = site.d;
  std::string big = "{\"commit\": \"" + std::string(2 << 20, 'a') + "\"}";
  auto r = http_post(d.api_port(), "/deploy", big);
  CHECK(r.status == 413);
  CHECK(d.status()["live_slot"] == "");
}

TEST_CASE("the API listens on 127.0.0.1 only by default") {
  Site site({{"v1"}});
  Daemon& d = site.d;
  CHECK(port_open(d.api_port(), "127.0.0.1"));
  CHECK_FALSE(port_open(d.api_port(), "127.0.0.2"));  // another loopback address
}

TEST_CASE("a second daemon on the same API port fails clearly") {
  Site site({{"v1"}});
  AppRepo& repo = site.repo;
  Daemon& d = site.d;
  auto r = run({slot_machine_bin(), "start", "--no-proxy", "--config", repo.config_path().string(),
                "--repo", repo.dir().string(), "--data", (repo.home() / "other").string()},
               repo.home(), {}, 10s);
  CHECK(r.exit_code != 0);
  CHECK_MESSAGE(r.err.find("cannot listen on 127.0.0.1:" + std::to_string(d.api_port())) != std::string::npos, r.err);
}
