#include "triggers/receiver.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "log/json_text.h"
#include "log/log.h"

namespace sm::triggers {
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

proxy::LocalAnswer answer(int status, const json& body, int retry_after_s = 0) {
  return {status, log::json_text(body) + "\n", retry_after_s};
}

proxy::LocalAnswer error(int status, const std::string& why, int retry_after_s = 0) {
  return answer(status, {{"error", why}}, retry_after_s);
}

std::string short_hash(const std::string& commit) { return commit.substr(0, 12); }

}  // namespace

Receiver::Receiver(std::string path, std::string secret, std::string branch, std::string app)
    : path_(std::move(path)), secret_(std::move(secret)), branch_(std::move(branch)), app_(std::move(app)) {}

void Receiver::start(Deploy deploy) {
  std::lock_guard lock(mu_);
  if (started_ || stopped_) return;
  deploy_ = std::move(deploy);
  started_ = true;
  pushes_.start([this](Queued& q) { this->deploy(q); });
}

void Receiver::stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  pushes_.close();
}

Receiver::Counts Receiver::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

bool Receiver::admit(const std::string& peer, Clock::time_point now) {
  if (buckets_.size() > 4096)  // forget the addresses whose bucket has filled up again
    std::erase_if(buckets_, [&](const auto& b) {
      return b.second.tokens + std::chrono::duration<double>(now - b.second.at).count() * kPerSecond >= kBurst;
    });
  auto [it, fresh] = buckets_.try_emplace(peer, Bucket{kBurst, now});
  Bucket& b = it->second;
  b.tokens = std::min(kBurst, b.tokens + std::chrono::duration<double>(now - b.at).count() * kPerSecond);
  b.at = now;
  if (b.tokens < 1) {
    if (!b.refusing)
      log::info("webhook: {} sends more than {} deliveries a second; answering 429 until it slows down", peer,
                kPerSecond);
    b.refusing = true;
    return false;
  }
  b.tokens -= 1;
  b.refusing = false;
  return true;
}

proxy::LocalAnswer Receiver::handle(const proxy::LocalRequest& r) {
  const log::Scope scope(app_);
  std::string rest = r.target.substr(std::min(path_.size(), r.target.size()));
  rest = rest.substr(0, rest.find('?'));
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopped_) return error(503, "the daemon is not taking webhooks now (starting or stopping)", 5);
    if (!admit(r.peer, Clock::now()))
      return error(429, fmt::format("more than {} deliveries a second from {}; try again shortly", kPerSecond, r.peer),
                   1);
  }
  const std::optional<Forge> named = forge_named(rest.starts_with("/") ? std::string_view(rest).substr(1) : "");
  if (!named)
    return error(404, fmt::format("no webhook at {}; use {}/github, {}/gitlab, {}/gitea or {}/generic",
                                  r.target.substr(0, 200), path_, path_, path_, path_));
  const Forge forge = *named;
  Reading reading = read_delivery(forge, r.headers, r.body, secret_, branch_);
  if (reading.status != 200) {
    log::info("webhook: {} delivery from {} refused ({}): {}", name_of(forge), r.peer, reading.status, reading.error);
    return error(reading.status, reading.error);
  }
  if (!reading.push) return answer(200, {{"ignored", reading.ignored}});
  return accept({std::move(*reading.push), forge});
}

proxy::LocalAnswer Receiver::accept(Queued q) {
  const Push p = q.push;
  const Forge forge = q.forge;
  {
    std::lock_guard lock(mu_);
    if (!p.delivery.empty()) {
      if (seen_.count(p.delivery))
        return answer(200, {{"ignored", fmt::format("delivery {} was received before; it is not deployed twice",
                                                    p.delivery)}});
      seen_.insert(p.delivery);
      seen_order_.push_back(p.delivery);
      if (seen_order_.size() > kRememberedDeliveries) {
        seen_.erase(seen_order_.front());
        seen_order_.pop_front();
      }
    }
  }
  const auto put = pushes_.put(std::move(q));
  if (!put.taken) return error(503, "the daemon is not taking webhooks now (stopping)", 5);
  std::optional<std::string> replaced;
  if (put.replaced) replaced = put.replaced->push.commit;
  {
    std::lock_guard lock(mu_);
    ++counts_.accepted;
    if (replaced) ++counts_.coalesced;
  }
  log::info("webhook: {} delivery {}: push of {} to {} accepted{}", name_of(forge),
            p.delivery.empty() ? "(no id)" : p.delivery, short_hash(p.commit), branch_,
            replaced ? fmt::format("; it replaces {}, which had not started", short_hash(*replaced))
                     : put.behind ? "; it deploys when the running deploy ends" : "");
  json body{{"accepted", p.commit}, {"branch", branch_}, {"delivery", p.delivery}, {"queued", put.behind}};
  if (replaced) body["replaces"] = *replaced;
  return answer(202, body);
}

void Receiver::deploy(const Queued& q) {
  const log::Scope scope(app_);
  const std::string failed = deploy_(q.push.commit);
  if (failed.empty())
    log::info("webhook: deployed {} ({} delivery {})", short_hash(q.push.commit), name_of(q.forge), q.push.delivery);
  else
    log::info("webhook: the deploy of {} ({} delivery {}) failed: {}", short_hash(q.push.commit), name_of(q.forge),
              q.push.delivery, failed);
  std::lock_guard lock(mu_);
  ++counts_.deployed;
}

}  // namespace sm::triggers
