#include "threads/inbox.h"

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <string>
#include <vector>

using sm::threads::Inbox;
using sm::threads::Keep;
using namespace std::chrono_literals;

TEST_CASE("Inbox Keep::All hands every item over, in order, one at a time") {
  std::mutex mu;
  std::vector<int> seen;
  std::atomic<int> inside{0}, most{0};
  std::promise<void> all;
  Inbox<int> inbox(Keep::All);
  inbox.start([&](int& n) {
    most = std::max(most.load(), ++inside);
    std::this_thread::sleep_for(1ms);
    --inside;
    std::lock_guard lock(mu);
    seen.push_back(n);
    if (seen.size() == 20) all.set_value();
  });
  for (int i = 0; i < 20; ++i) CHECK(inbox.put(i).taken);
  CHECK(all.get_future().wait_for(10s) == std::future_status::ready);
  inbox.close();
  std::vector<int> want(20);
  for (int i = 0; i < 20; ++i) want[static_cast<size_t>(i)] = i;
  CHECK(seen == want);
  CHECK(most == 1);
}

TEST_CASE("Inbox Keep::Latest: a newer item replaces the waiting one, and says so") {
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> first_in;
  std::vector<std::string> seen;
  Inbox<std::string> inbox(Keep::Latest);
  inbox.start([&](std::string& s) {
    seen.push_back(s);
    if (s == "a") {
      first_in.set_value();
      released.wait();
    }
  });
  CHECK(!inbox.put("a").behind);
  first_in.get_future().wait();
  const auto b = inbox.put("b");  // waits behind a
  CHECK(b.behind);
  CHECK(!b.replaced);
  const auto c = inbox.put("c");  // replaces b
  CHECK(c.replaced == std::optional<std::string>("b"));
  release.set_value();
  for (int i = 0; i < 500 && seen.size() < 2; ++i) std::this_thread::sleep_for(2ms);
  inbox.close();
  CHECK(seen == std::vector<std::string>{"a", "c"});
}

TEST_CASE("Inbox close drops what waits, cuts the handler's sleep short and takes nothing after") {
  std::promise<void> sleeping;
  std::atomic<bool> slept_through{true};
  Inbox<int> inbox(Keep::All);
  inbox.start([&](int&) {
    sleeping.set_value();
    slept_through = inbox.sleep_for(60s);
  });
  inbox.put(1);
  sleeping.get_future().wait();
  inbox.put(2);
  inbox.put(3);
  const auto began = std::chrono::steady_clock::now();
  CHECK(inbox.close() == 2);
  CHECK(std::chrono::steady_clock::now() - began < 10s);
  CHECK(!slept_through);
  CHECK(!inbox.put(4).taken);
  CHECK(inbox.close() == 0);  // idempotent
}

TEST_CASE("Inbox items put before start wait for it; closing an unstarted inbox drops them") {
  Inbox<int> inbox(Keep::All);
  CHECK(inbox.put(1).behind);
  CHECK(inbox.close() == 1);
}
