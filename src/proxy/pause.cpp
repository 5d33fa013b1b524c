// Pause (contract §14): an app's new requests wait at a gate until resume() opens it or
// its timeout does (then they are answered 503). The gate is a timer per event loop that
// the waiting requests' coroutines of that loop wait on: cancelling it wakes them in the
// order they came.

#include <fmt/format.h>

#include <future>

#include "log/log.h"
#include "proxy/impl.h"

namespace sm::proxy {

void Proxy::Impl::open_gate(const std::string& app, const std::shared_ptr<Gate>& gate, bool resumed) {
  const auto before = paused.load();
  if (const auto it = before->find(app); it != before->end() && it->second == gate) {
    auto next = std::make_shared<PauseMap>(*before);
    next->erase(app);
    paused.store(std::move(next));
  }
  gate->resumed = resumed;
  gate->deadline.cancel();
  for (auto& l : loops)  // each loop's timer on its own thread
    asio::post(l->io, [gate, i = l->index] { gate->waits[i]->cancel(); });
}

awaitable<bool> Proxy::Impl::hold(const std::string& app) {
  const auto map = paused.load();
  const auto it = map->find(app);
  if (it == map->end()) co_return true;
  const std::shared_ptr<Gate> gate = it->second;
  if (gate->held >= kMaxHeld) co_return false;
  ++gate->held;
  error_code ec;
  co_await gate->waits[current->index]->async_wait(redirect(ec));
  --gate->held;
  co_return gate->resumed.load();
}

awaitable<void> Proxy::Impl::answer_held(Stream& client, const http::request<http::buffer_body>& req) {
  http::response<http::string_body> res{http::status::service_unavailable, req.version()};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::retry_after, "5");
  res.set(http::field::cache_control, "no-store");
  res.body() = "paused: this site is being updated; try again in a few seconds\n";
  res.prepare_payload();
  co_await write_last(client, res);
}

bool Proxy::pause(const std::string& app, std::chrono::seconds timeout) {
  std::promise<bool> done;
  asio::post(impl_->io, [&] {
    const auto before = impl_->paused.load();
    if (before->count(app)) {
      done.set_value(false);
      return;
    }
    auto gate = std::make_shared<Impl::Gate>(*impl_);
    gate->since = log::now_rfc3339();
    gate->deadline.expires_after(timeout);
    auto next = std::make_shared<Impl::PauseMap>(*before);
    (*next)[app] = gate;
    impl_->paused.store(std::move(next));
    // The pause ends by itself at its timeout: the held requests then find it timed out.
    asio::co_spawn(
        impl_->io,
        [impl = impl_.get(), gate, app]() -> awaitable<void> {
          error_code ec;
          co_await gate->deadline.async_wait(redirect(ec));
          if (!ec) {
            log::info("pause{} timed out; {} held request(s) get 503", app.empty() ? "" : " of app " + app,
                      gate->held.load());
            impl->open_gate(app, gate, false);
          }
        },
        asio::detached);
    done.set_value(true);
  });
  return done.get_future().get();
}

bool Proxy::resume(const std::string& app) {
  std::promise<bool> done;
  asio::post(impl_->io, [&] {
    const auto map = impl_->paused.load();
    const auto it = map->find(app);
    if (it == map->end()) {
      done.set_value(false);
      return;
    }
    impl_->open_gate(app, it->second, true);
    done.set_value(true);
  });
  return done.get_future().get();
}

std::optional<Proxy::Paused> Proxy::paused(const std::string& app) const {
  const auto map = impl_->paused.load();
  const auto it = map->find(app);
  if (it == map->end()) return std::nullopt;
  return Paused{it->second->since, it->second->held.load()};
}

}  // namespace sm::proxy
