// Canary (contract §14): an app's requests split between its live version and a new one
// by a cookie, drawn for a visitor that has none. The split is part of the route
// snapshot, so a request pays nothing more for it while no canary runs.

#include <fmt/format.h>

#include <random>

#include "proxy/impl.h"

namespace sm::proxy {

std::optional<bool> canary_side(std::string_view header) {
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
    while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t')) pair.remove_suffix(1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos || pair.substr(0, eq) != kCanaryCookie) continue;
    std::string_view value = pair.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (value == "new") return true;
    if (value == "old") return false;
    return std::nullopt;  // forged or garbled: drawn afresh, and set again
  }
  return std::nullopt;
}

unsigned Proxy::Impl::canary_roll() {
  thread_local std::minstd_rand rng(std::random_device{}());
  return std::uniform_int_distribution<unsigned>(0, 99)(rng);
}

std::shared_ptr<Backend> Proxy::Impl::split(const Canary& c, const std::shared_ptr<Backend>& live,
                                            const http::request<http::buffer_body>& req, unsigned roll, bool& drawn) {
  std::optional<bool> side;
  for (auto [it, end] = req.equal_range(http::field::cookie); it != end && !side; ++it)
    side = canary_side(std::string_view(it->value().data(), it->value().size()));
  drawn = !side;
  const bool to_new = side ? *side : roll < static_cast<unsigned>(c.percent);
  return to_new ? c.backend : live;
}

void Proxy::set_canary(const std::string& app, int port, int percent) {
  std::shared_ptr<const Impl::Canary> c;
  if (percent > 0) {
    auto made = std::make_shared<Impl::Canary>();
    made->backend = impl_->backend_for(port);
    made->percent = percent;
    c = std::move(made);
  }
  std::lock_guard lock(impl_->routes_write_mu);
  Impl::Routes next = *impl_->routes.load();
  if (!next.hosts) {
    next.canary = std::move(c);
  } else {
    bool found = false;
    for (size_t i = 0; i < next.hosts->apps().size(); ++i)
      if (next.hosts->apps()[i].name == app) {
        next.canaries[i] = c;
        found = true;
      }
    if (!found) throw std::runtime_error(fmt::format("the proxy routes no app named {}", app));
  }
  impl_->routes.store(std::make_shared<const Impl::Routes>(std::move(next)));
}

std::optional<Proxy::CanaryCounts> Proxy::canary(const std::string& app) const {
  const auto r = impl_->routes.load();
  std::shared_ptr<const Impl::Canary> c = r->canary;
  if (r->hosts)
    for (size_t i = 0; i < r->hosts->apps().size(); ++i)
      if (r->hosts->apps()[i].name == app) c = r->canaries[i];
  if (!c) return std::nullopt;
  return CanaryCounts{c->tally->to_new.load(std::memory_order_relaxed), c->tally->to_old.load(std::memory_order_relaxed)};
}

}  // namespace sm::proxy
