#include "triggers/webhook.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "triggers/receiver.h"

using namespace sm::triggers;
using Headers = std::map<std::string, std::string>;

namespace {
const std::string kSecret = "a-webhook-secret-of-some-length";
const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";

std::string push_body(const std::string& ref = "refs/heads/main", const std::string& after = kCommit) {
  return "{\"ref\":\"" + ref + "\",\"after\":\"" + after + "\",\"before\":\"" + std::string(40, '1') + "\"}";
}

Headers github(const std::string& body, const std::string& event = "push", const std::string& id = "d-1") {
  return {{"x-github-event", event}, {"x-github-delivery", id},
          {"x-hub-signature-256", "sha256=" + hmac_sha256_hex(kSecret, body)}};
}
}  // namespace

TEST_CASE("hmac_sha256_hex matches RFC 4231 and GitHub's documented example") {
  CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(hmac_sha256_hex("It's a Secret to Everybody", "Hello, World!") ==
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

TEST_CASE("read_delivery: each forge's signature, then the push it names") {
  const std::string body = push_body();
  SUBCASE("github") {
    Reading r = read_delivery(Forge::GitHub, github(body), body, kSecret, "main");
    REQUIRE(r.push);
    CHECK(r.push->commit == kCommit);
    CHECK(r.push->delivery == "d-1");
    auto upper = github(body);
    for (auto& ch : upper["x-hub-signature-256"]) ch = static_cast<char>(std::toupper(ch));
    upper["x-hub-signature-256"].replace(0, 7, "sha256=");
    CHECK(read_delivery(Forge::GitHub, upper, body, kSecret, "main").push);  // hex in capitals is the same MAC
  }
  SUBCASE("gitlab: the token itself") {
    Headers h{{"x-gitlab-event", "Push Hook"}, {"x-gitlab-token", kSecret}, {"x-gitlab-event-uuid", "u-1"}};
    Reading r = read_delivery(Forge::GitLab, h, body, kSecret, "main");
    REQUIRE(r.push);
    CHECK(r.push->delivery == "u-1");
    h["x-gitlab-token"] = kSecret + "x";
    CHECK(read_delivery(Forge::GitLab, h, body, kSecret, "main").status == 401);
  }
  SUBCASE("gitea and forgejo: bare hex") {
    Headers h{{"x-gitea-event", "push"}, {"x-gitea-signature", hmac_sha256_hex(kSecret, body)}, {"x-gitea-delivery", "g"}};
    CHECK(read_delivery(Forge::Gitea, h, body, kSecret, "main").push);
    Headers f{{"x-forgejo-event", "push"}, {"x-forgejo-signature", hmac_sha256_hex(kSecret, body)}};
    CHECK(read_delivery(Forge::Gitea, f, body, kSecret, "main").push);
  }
  SUBCASE("generic: sha256= prefix, no event header needed") {
    Headers h{{"x-slot-machine-signature", "sha256=" + hmac_sha256_hex(kSecret, body)}};
    Reading r = read_delivery(Forge::Generic, h, body, kSecret, "main");
    REQUIRE(r.push);
    CHECK(r.push->delivery.empty());
  }
}

TEST_CASE("read_delivery refuses before it reads: bad signatures are 401, whatever the body") {
  const std::string body = push_body();
  for (const Headers& h : {Headers{}, Headers{{"x-hub-signature-256", "sha256="}},
                           Headers{{"x-hub-signature-256", hmac_sha256_hex(kSecret, body)}},  // no prefix
                           Headers{{"x-hub-signature-256", "sha256=" + hmac_sha256_hex("other", body)}},
                           Headers{{"x-hub-signature-256", "sha1=" + hmac_sha256_hex(kSecret, body)}}}) {
    Reading r = read_delivery(Forge::GitHub, h, body, kSecret, "main");
    CHECK(r.status == 401);
    CHECK(r.error.find("X-Hub-Signature-256") != std::string::npos);
    CHECK_FALSE(r.push);
  }
  // Signed over other bytes than were sent.
  CHECK(read_delivery(Forge::GitHub, github(body), body + " ", kSecret, "main").status == 401);
}

TEST_CASE("read_delivery: what is ignored and what is malformed") {
  auto read = [](const std::string& body, const std::string& event = "push") {
    return read_delivery(Forge::GitHub, github(body, event), body, kSecret, "main");
  };
  CHECK(read("{}", "ping").ignored.find("\"ping\" is not a push") != std::string::npos);
  CHECK(read(push_body("refs/heads/dev")).ignored.find("a push to refs/heads/dev, not refs/heads/main") !=
        std::string::npos);
  CHECK(read(push_body("refs/tags/v1")).ignored.find("refs/tags/v1") != std::string::npos);
  CHECK(read(push_body("refs/heads/main", std::string(40, '0'))).ignored.find("deleted") != std::string::npos);
  CHECK(read("not json").status == 400);
  CHECK(read("[1,2]").status == 400);
  CHECK(read("{\"ref\":\"refs/heads/main\"}").status == 400);
  CHECK(read("{\"ref\":1,\"after\":\"x\"}").status == 400);
  Reading short_hash = read(push_body("refs/heads/main", "abc123"));
  CHECK(short_hash.status == 400);
  CHECK(short_hash.error.find("not a full commit hash") != std::string::npos);
  CHECK(read(push_body("refs/heads/main", std::string(40, 'g'))).status == 400);
}

namespace {
sm::proxy::LocalRequest request(const std::string& forge, const std::string& body, const Headers& h,
                                const std::string& peer = "192.0.2.1") {
  return {"/hooks/" + forge, h, body, peer};
}
}  // namespace

TEST_CASE("Receiver: 202 at once, pushes during a deploy coalesce to the newest, a delivery id is deployed once") {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> deployed;
  bool release = false;
  Receiver r("/hooks", kSecret, "main");
  CHECK(r.handle(request("github", push_body(), github(push_body()))).status == 503);  // not started
  r.start([&](const std::string& commit) {
    std::unique_lock lock(mu);
    deployed.push_back(commit);
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    return std::string();
  });
  auto send = [&](const std::string& commit, const std::string& id) {
    const std::string body = push_body("refs/heads/main", commit);
    return r.handle(request("github", body, github(body, "push", id)));
  };
  const std::string a(40, 'a'), b(40, 'b'), c(40, 'c');
  auto first = send(a, "1");
  CHECK(first.status == 202);
  CHECK(first.body.find("\"queued\":false") != std::string::npos);
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return deployed.size() == 1; }));
  }
  auto second = send(b, "2");
  CHECK(second.status == 202);
  CHECK(second.body.find("\"queued\":true") != std::string::npos);
  auto third = send(c, "3");
  CHECK(third.status == 202);
  CHECK(third.body.find("\"replaces\":\"" + b + "\"") != std::string::npos);
  auto again = send(c, "3");
  CHECK(again.status == 200);
  CHECK(again.body.find("not deployed twice") != std::string::npos);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (r.counts().deployed < 2 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  r.stop();
  CHECK(deployed == std::vector<std::string>{a, c});
  CHECK(r.counts().accepted == 3);
  CHECK(r.counts().coalesced == 1);
  CHECK(r.handle(request("github", push_body(), github(push_body()))).status == 503);  // stopped
}

TEST_CASE("Receiver: unknown forge 404, bad signature 401, and a flood from one address is 429") {
  Receiver r("/hooks", kSecret, "main");
  r.start([](const std::string&) { return std::string(); });
  CHECK(r.handle(request("bitbucket", "{}", {})).status == 404);
  CHECK(r.handle(request("", "{}", {})).status == 404);
  int refused = 0, limited = 0;
  for (int i = 0; i < 40; ++i) {
    const auto a = r.handle(request("github", push_body(), {}, "198.51.100.7"));
    refused += a.status == 401;
    if (a.status == 429) {
      ++limited;
      CHECK(a.retry_after_s == 1);
    }
  }
  CHECK(refused >= Receiver::kBurst - 2);  // the two 404s above came from another address
  CHECK(limited >= 10);
  // Another address is not held back by the first one's flood.
  CHECK(r.handle(request("github", push_body(), {}, "198.51.100.8")).status == 401);
}
