#include "notify/outbox.h"

#include <fmt/format.h>
#include <httplib.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "files/atomic_file.h"
#include "log/json_text.h"
#include "log/log.h"
#include "triggers/webhook.h"
#include "version/version.h"

namespace sm::notify {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Outbox::Worker {
  Target target;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Notice> incoming;      // posted, not written yet
  std::vector<Delivery> pending;    // written, not delivered yet
  bool stop = false;
  std::atomic<int> delivered{0}, dropped{0};
  std::thread thread;
};

std::chrono::seconds retry_delay(int failed_tries) {
  return std::chrono::seconds(2LL << std::clamp(failed_tries - 1, 0, 10));
}

bool Target::wants(const std::string& event) const {
  return config.events.empty() || std::find(config.events.begin(), config.events.end(), event) != config.events.end();
}

std::string post(const Target& t, const std::string& event, const std::string& delivery, const std::string& body) {
  const auto scheme_end = t.config.url.find("://");
  const auto path_at = t.config.url.find('/', scheme_end + 3);
  const std::string origin = t.config.url.substr(0, path_at);
  const std::string path = path_at == std::string::npos ? "/" : t.config.url.substr(path_at);
  httplib::Client c(origin);
  if (!c.is_valid()) return "the URL cannot be used";
  c.set_connection_timeout(5, 0);
  c.set_read_timeout(10, 0);
  c.set_write_timeout(10, 0);
  c.enable_server_certificate_verification(true);
  httplib::Headers h{{"User-Agent", std::string("slot-machine/") + kVersion},
                     {"X-Slot-Machine-Event", event},
                     {"X-Slot-Machine-Delivery", delivery}};
  if (!t.secret.empty()) h.emplace("X-Slot-Machine-Signature", "sha256=" + triggers::hmac_sha256_hex(t.secret, body));
  auto r = c.Post(path, h, body, "application/json");
  if (!r) return fmt::format("no answer: {}", httplib::to_string(r.error()));
  if (r->status < 200 || r->status > 299) return fmt::format("it answered {}", r->status);
  return "";
}

namespace {

std::string new_id() {
  unsigned char r[8];
  RAND_bytes(r, sizeof r);
  std::string hex;
  for (unsigned char b : r) hex += fmt::format("{:02x}", b);
  // Milliseconds first: the files sort in the order they were made.
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch()).count();
  return fmt::format("{:013d}-{}", ms, hex);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Outbox::Outbox(fs::path dir, std::vector<Target> targets, Sender send) : dir_(std::move(dir)), send_(std::move(send)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) log::info("warning: cannot create {}: {}; notifications are not kept across restarts", dir_.string(),
                    ec.message());
  for (auto& t : targets) {
    workers_.push_back(std::make_unique<Worker>());
    workers_.back()->target = std::move(t);
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir_, ec))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    const json j = json::parse(slurp(f), nullptr, false);
    Worker* owner = nullptr;
    if (j.is_object())
      for (auto& w : workers_)
        if (w->target.config.url == j.value("url", "")) owner = w.get();
    if (!owner || !j["body"].is_string() || !j["event"].is_string()) {
      log::info("notify: dropping {}: {}", f.string(),
                j.is_object() ? fmt::format("no notify target has the URL {} any more", j.value("url", "?"))
                              : "it is not a notification");
      fs::remove(f, ec);
      continue;
    }
    owner->pending.push_back({f.stem().string(), j["event"], j["body"], j.value("tries", 0), Clock::now()});
  }
  for (auto& w : workers_) {
    if (!w->pending.empty())
      log::info("notify: {} notification(s) for {} left from before; delivering", w->pending.size(),
                w->target.config.url);
    w->thread = std::thread([this, w = w.get()] { run(*w); });
  }
}

Outbox::~Outbox() { stop(); }

void Outbox::post_notice(const Notice& n) {
  for (auto& w : workers_) {
    if (!w->target.wants(n.event)) continue;
    {
      std::lock_guard lock(w->mu);
      if (w->stop) continue;
      w->incoming.push_back(n);
    }
    w->cv.notify_all();
  }
}

void Outbox::stop() {
  for (auto& w : workers_) {
    {
      std::lock_guard lock(w->mu);
      w->stop = true;
    }
    w->cv.notify_all();
  }
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
}

int Outbox::delivered() const {
  int n = 0;
  for (const auto& w : workers_) n += w->delivered;
  return n;
}

int Outbox::dropped() const {
  int n = 0;
  for (const auto& w : workers_) n += w->dropped;
  return n;
}

void Outbox::save(const Worker& w, const Delivery& d) const {
  try {
    files::write_atomic(dir_ / (d.id + ".json"),
                        log::json_text({{"url", w.target.config.url}, {"event", d.event}, {"body", d.body},
                                        {"tries", d.tries}}) + "\n",
                        0600);
  } catch (const std::exception& e) {
    log::info("warning: notify: {}; this notification is not kept across a restart", e.what());
  }
}

void Outbox::forget(const Delivery& d) const {
  std::error_code ec;
  fs::remove(dir_ / (d.id + ".json"), ec);
}

void Outbox::run(Worker& w) {
  std::unique_lock lock(w.mu);
  for (;;) {
    // Written to disk first: from here on a restart does not lose it.
    while (!w.incoming.empty()) {
      Notice n = std::move(w.incoming.front());
      w.incoming.pop_front();
      Delivery d{new_id(), n.event, render(n, w.target.config.format), 0, Clock::now()};
      lock.unlock();
      save(w, d);
      lock.lock();
      w.pending.push_back(std::move(d));
    }
    if (w.stop) return;
    auto next = std::min_element(w.pending.begin(), w.pending.end(),
                                 [](const Delivery& a, const Delivery& b) { return a.due < b.due; });
    if (next == w.pending.end()) {
      w.cv.wait(lock, [&] { return w.stop || !w.incoming.empty(); });
      continue;
    }
    if (next->due > Clock::now()) {
      w.cv.wait_until(lock, next->due, [&] { return w.stop || !w.incoming.empty(); });
      continue;
    }
    Delivery d = *next;
    w.pending.erase(next);
    lock.unlock();
    const std::string failed = send_(w.target, d.event, d.id, d.body);
    ++d.tries;
    if (failed.empty()) {
      forget(d);
      ++w.delivered;
    } else if (d.tries >= kTries) {
      log::info("notify: gave up on {} to {} after {} tries: {}", d.event, w.target.config.url, d.tries, failed);
      forget(d);
      ++w.dropped;
    } else {
      const auto wait = retry_delay(d.tries);
      log::info("notify: {} to {} failed (try {} of {}): {}; trying again in {} s", d.event, w.target.config.url,
                d.tries, kTries, failed, wait.count());
      d.due = Clock::now() + wait;
      save(w, d);
    }
    lock.lock();
    if (!failed.empty() && d.tries < kTries) w.pending.push_back(std::move(d));
  }
}

}  // namespace sm::notify
