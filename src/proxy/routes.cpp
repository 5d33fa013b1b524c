// Where requests go: the route snapshot the event loop reads without a lock (one app's
// backend, or several apps' host routes and backends), its writers (switch_to,
// switch_app, route_hosts), the host-routing answers that forward nothing (400, 404,
// 308, 421), and the counters read off the backends (in flight, tunnels, requests).

#include <fmt/format.h>

#include <future>
#include <thread>

#include "proxy/impl.h"

namespace sm::proxy {

bool Proxy::Impl::is_misdirected(const hosts::Router& r, std::string_view server_name,
                                 const http::request<http::buffer_body>& req, const hosts::Decision& d) {
  if (server_name.empty()) return false;
  error_code not_ip;
  asio::ip::make_address(std::string(server_name), not_ip);
  if (!not_ip) return false;  // an address sent as the name (wrk, older curl): no name
  const auto h = req[http::field::host];
  const auto sni = hosts::normalise(server_name), host = hosts::normalise(std::string_view(h.data(), h.size()));
  if (sni && host && *sni == *host) return false;
  const auto app = r.app_of_server_name(server_name);
  return !app || r.apps()[*app].name != d.app;
}

awaitable<void> Proxy::Impl::answer_unrouted(Stream& client, const http::request<http::buffer_body>& req,
                                             const hosts::Decision& d) {
  using Kind = hosts::Decision::Kind;
  if (d.kind == Kind::Redirect) {
    http::response<http::empty_body> res{http::status::permanent_redirect, req.version()};
    res.set(http::field::location, d.target);
    res.content_length(0);
    co_await write_last(client, res);
    co_return;
  }
  // A short text: never another app's page.
  http::response<http::string_body> res{d.kind == Kind::BadRequest ? http::status::bad_request : http::status::not_found,
                                        req.version()};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = d.why + "\n";
  res.prepare_payload();
  co_await write_last(client, res);
}

awaitable<void> Proxy::Impl::answer_maintenance(Stream& client, const http::request<http::buffer_body>& req,
                                                const Maintenance& m) {
  http::response<http::string_body> res{http::status::service_unavailable, req.version()};
  const auto accept = req[http::field::accept];
  const bool html = std::string_view(accept.data(), accept.size()).find("text/html") != std::string_view::npos;
  res.set(http::field::content_type, html ? "text/html; charset=utf-8" : "text/plain; charset=utf-8");
  res.set(http::field::retry_after, std::to_string(m.retry_after_s));
  res.set(http::field::cache_control, "no-store");
  res.body() = html ? m.html : m.text;
  res.prepare_payload();
  co_await write_last(client, res);
}

void Proxy::set_maintenance(const std::string& app, std::shared_ptr<const Maintenance> m) {
  std::lock_guard lock(impl_->routes_write_mu);
  auto next = std::make_shared<Impl::MaintenanceMap>(*impl_->maintenance.load());
  if (m)
    (*next)[app] = std::move(m);
  else
    next->erase(app);
  impl_->maintenance.store(std::move(next));
}

void Proxy::Impl::remember(const std::shared_ptr<Backend>& b) {
  std::lock_guard lock(known_mu);
  known.push_back(b);
  std::erase_if(known, [](const auto& w) { return w.expired(); });
}

void Proxy::switch_to(int port, int internal_port) {
  auto pub = impl_->backend_for(port);
  auto internal = impl_->backend_for(internal_port);
  bool first;
  {
    std::lock_guard lock(impl_->routes_write_mu);
    const auto before = impl_->routes.load();
    first = !before->public_backend;
    Impl::Routes next;
    next.public_backend = std::move(pub);
    next.internal_backend = std::move(internal);
    // A restart of live keeps the canary; a switch to the canary (promote) ends it.
    if (before->canary && before->canary->backend->port != port) next.canary = before->canary;
    impl_->routes.store(std::make_shared<const Impl::Routes>(std::move(next)));
  }
  if (first) listen_now();
}

void Proxy::route_hosts(std::shared_ptr<const hosts::Router> router) {
  std::lock_guard lock(impl_->routes_write_mu);
  const auto before = impl_->routes.load();
  Impl::Routes next;
  next.hosts = std::move(router);
  for (const auto& app : next.hosts->apps()) {  // each app keeps its live backend and its counts
    std::shared_ptr<Backend> live;
    std::shared_ptr<AppCounters> counts;
    std::shared_ptr<const Impl::Canary> canary;
    if (before->hosts)
      for (size_t i = 0; i < before->hosts->apps().size(); ++i)
        if (before->hosts->apps()[i].name == app.name) {
          live = before->apps[i];
          counts = before->app_counters[i];
          canary = before->canaries[i];
        }
    next.apps.push_back(std::move(live));
    next.app_counters.push_back(counts ? std::move(counts) : std::make_shared<AppCounters>(impl_->loops.size()));
    next.canaries.push_back(std::move(canary));
    next.codings.push_back(Codings::from_names(app.compress));
  }
  impl_->routes.store(std::make_shared<const Impl::Routes>(std::move(next)));
}

void Proxy::switch_app(const std::string& app, int port) {
  auto b = impl_->backend_for(port);
  std::lock_guard lock(impl_->routes_write_mu);
  const auto before = impl_->routes.load();
  if (!before->hosts) throw std::logic_error("Proxy::switch_app before route_hosts");
  Impl::Routes next = *before;
  bool found = false;
  for (size_t i = 0; i < next.hosts->apps().size(); ++i)
    if (next.hosts->apps()[i].name == app) {
      next.apps[i] = b;
      if (next.canaries[i] && next.canaries[i]->backend->port == port) next.canaries[i] = nullptr;  // promoted
      found = true;
    }
  if (!found) throw std::runtime_error(fmt::format("the proxy routes no app named {}", app));
  impl_->routes.store(std::make_shared<const Impl::Routes>(std::move(next)));
}

int Proxy::Impl::count(int port, std::atomic<int> Backend::*what) const {
  std::lock_guard lock(known_mu);
  int n = 0;
  for (const auto& w : known)
    if (auto b = w.lock(); b && b->port == port) n += (*b).*what;
  return n;
}

Stats Proxy::Impl::summed(const std::vector<const Counters*>& each) const {
  Stats s;
  for (const Counters* c : each) {
    for (size_t i = 0; i < s.responses.size(); ++i) s.responses[i] += c->responses[i].load(std::memory_order_relaxed);
    s.upgrades += c->upgrades.load(std::memory_order_relaxed);
    const auto d = c->duration.snapshot();
    if (s.duration.cumulative.empty()) {
      s.duration = d;
    } else {
      for (size_t i = 0; i < d.cumulative.size() && i < s.duration.cumulative.size(); ++i)
        s.duration.cumulative[i] += d.cumulative[i];
      s.duration.sum += d.sum;
    }
  }
  return s;
}

Stats Proxy::stats() const {
  std::vector<const Counters*> each;
  for (const auto& l : impl_->loops) each.push_back(&l->counters);
  Stats s = impl_->summed(each);
  s.open_connections = impl_->connections.load(std::memory_order_relaxed);
  return s;
}

std::map<std::string, Stats> Proxy::app_stats() const {
  std::map<std::string, Stats> out;
  const auto r = impl_->routes.load();
  if (!r->hosts) return out;
  for (size_t i = 0; i < r->hosts->apps().size(); ++i) {
    std::vector<const Counters*> each;
    for (const auto& c : r->app_counters[i]->by_loop) each.push_back(c.get());
    out[r->hosts->apps()[i].name] = impl_->summed(each);
  }
  return out;
}

int Proxy::in_flight(int port) const { return impl_->count(port, &Backend::in_flight); }

int Proxy::tunnels(int port) const { return impl_->count(port, &Backend::tunnels); }

void Proxy::wait_idle(int port, Clock::time_point deadline, const std::function<bool()>& stop) {
  // Fine-grained at first (most requests end within milliseconds: a rollback to a
  // frozen standby waits for them), coarser after.
  const auto began = Clock::now();
  while ((in_flight(port) > 0 || tunnels(port) > 0) && Clock::now() < deadline) {
    if (stop && stop()) return;
    std::this_thread::sleep_for(Clock::now() - began < std::chrono::milliseconds(20) ? std::chrono::microseconds(200)
                                                                                   : std::chrono::microseconds(2000));
  }
  if (tunnels(port) == 0) return;
  impl_->close_tunnels(port);
}

}  // namespace sm::proxy
