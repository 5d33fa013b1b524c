#include "proxy/proxy.h"

#include <boost/beast/websocket/rfc6455.hpp>
#include <fmt/format.h>

#include <future>

#include "proxy/impl.h"

namespace sm::proxy {

awaitable<void> Proxy::Impl::session(Socket sock, asio::ip::address peer_addr, Kind kind) {
  struct Count {  // taken by serve_accepted()
    Impl& self;
    asio::ip::address peer;
    ~Count() {
      --self.connections;
      std::lock_guard lock(self.per_ip_mu);
      if (auto it = self.per_ip.find(peer); it != self.per_ip.end() && --it->second == 0)
        self.per_ip.erase(it);
    }
  } count{*this, peer_addr};
  const std::string peer = peer_addr.to_string();
  Loop& loop = *current;  // the loop this session runs on, from accept to close
  Stream client = kind == Kind::Https ? Stream(std::move(sock), tls_now()) : Stream(std::move(sock));
  auto watched = std::make_shared<Watched>(loop.io.get_executor());
  watched->client = &client;
  struct StopWatching {
    Watched& w;
    ~StopWatching() {
      w.done = true;
      w.timer.cancel();
    }
  } stop_watching{*watched};
  asio::co_spawn(loop.io, watchdog(watched), asio::detached);
  if (client.is_tls()) {  // garbage, a stall or a name we do not serve: closed
    client.expires_after(opts.header_timeout);
    if (co_await client.handshake()) co_return;
  }
  beast::flat_buffer cbuf;
  for (;;) {
    http::request_parser<http::buffer_body> req;
    req.header_limit(kHeaderLimit);
    req.body_limit(kNoBodyLimit);
    client.answered = 0;
    auto refused = co_await read_request_header(client, cbuf, req, *watched);
    struct CountAnswer {  // however this request ends
      Counters& counters;
      const Stream& client;
      std::shared_ptr<Counters> app = nullptr;  // several apps: the app's own, once routed to it
      Clock::time_point began = Clock::now();
      ~CountAnswer() {
        counters.answered(client, began);
        if (app) app->answered(client, began);
      }
    } count_answer{loop.counters, client};
    if (refused) {
      if (refused->status)
        co_await write_error(client, static_cast<http::status>(refused->status),
                             refused->reason, refused->status == 405 ? kAllow : nullptr);
      co_return;
    }
    auto& head = req.get();
    const auto by_host = kind == Kind::Internal ? nullptr : routes.load()->hosts;
    const auto target = head.target();
    hosts::Decision decision;
    auto decide = [&](const hosts::Router& r) {
      const auto h = head[http::field::host];
      decision = r.decide(std::string_view(h.data(), h.size()), std::string_view(target.data(), target.size()),
                          client.is_tls());
    };
    if (kind == Kind::Public && opts.tls_port) {
      // Plain HTTP beside HTTPS: a host no app has is told so; every other request is
      // sent to HTTPS (ACME challenges are answered whatever the host), once its host has
      // a certificate.
      std::string for_app;
      if (by_host && !target.starts_with("/.well-known/acme-challenge/")) {
        decide(*by_host);
        if (decision.kind == hosts::Decision::Kind::BadRequest || decision.kind == hosts::Decision::Kind::NotFound) {
          co_await answer_unrouted(client, head, decision);
          co_return;
        }
        for_app = decision.app;
      }
      const bool ready = https_ready(for_app);
      co_await redirect_to_https(client, head, ready);
      co_return;
    }
    const std::string server_name = client.is_tls() ? client.server_name() : "";
    if (kind != Kind::Internal && is_local(head)) {
      co_await answer_locally(client, cbuf, req, peer);
      co_return;
    }
    // Pause (contract §14): the request waits here, its body unread, until its app goes on.
    if (kind != Kind::Internal && !paused.load()->empty()) {
      std::string app;
      if (by_host) {
        decide(*by_host);
        app = decision.app;
      }
      client.expires_never();  // the header's deadline is met; a held request may wait longer
      if (!co_await hold(app)) {
        co_await answer_held(client, head);
        co_return;
      }
    }
    std::shared_ptr<Backend> backend;
    uint64_t body_limit = kind == Kind::Internal || by_host ? 0 : opts.max_request_body;
    AnswerRules rules;
    if (kind != Kind::Internal && !by_host) rules.compress = one_app_codings;
    // Canary (contract §14): the app's split, when it has one, picks the side.
    std::shared_ptr<const Canary> canary;
    bool drawn = false;
    unsigned roll = 100;  // drawn once, when a canary needs it
    auto split_if_canary = [&](std::shared_ptr<const Canary> c, const std::shared_ptr<Backend>& live) {
      canary = std::move(c);
      if (!canary || !live) return live;
      if (roll > 99) roll = canary_roll();
      return split(*canary, live, head, roll, drawn);
    };
    if (by_host) {
      bool misdirected = false;
      backend = take([&](const Routes& r) -> std::shared_ptr<Backend> {
        canary = nullptr;
        if (!r.hosts) return nullptr;
        decide(*r.hosts);
        if (decision.kind != hosts::Decision::Kind::Forward && decision.kind != hosts::Decision::Kind::Redirect)
          return nullptr;
        const auto& counts = r.app_counters[decision.index];  // this loop's share of them
        count_answer.app = std::shared_ptr<Counters>(counts, counts->by_loop[loop.index].get());
        misdirected = is_misdirected(*r.hosts, server_name, head, decision);
        if (decision.kind != hosts::Decision::Kind::Forward || misdirected) return nullptr;
        body_limit = r.hosts->apps()[decision.index].max_request_body;
        rules.compress = r.codings[decision.index];
        return split_if_canary(r.canaries[decision.index], r.apps[decision.index]);
      });
      if (misdirected) {
        co_await write_error(client, http::status::misdirected_request,
                             "this connection's server name (SNI) belongs to another app than the Host; open a "
                             "connection for this host");
        co_return;
      }
      if (decision.kind != hosts::Decision::Kind::Forward) {
        co_await answer_unrouted(client, head, decision);
        co_return;
      }
      if (decision.target != std::string_view(target.data(), target.size()))  // a prefix stripped, or absolute-form
        head.target(decision.target);
      head.erase("X-Forwarded-Prefix");
      if (!decision.prefix.empty()) head.set("X-Forwarded-Prefix", decision.prefix);
    } else {
      backend = take([&, internal = kind == Kind::Internal](const Routes& r) {
        return internal ? r.internal_backend : split_if_canary(r.canary, r.public_backend);
      });
    }
    InFlight counted(backend);
    // Maintenance (contract §14): the app answers nothing; slot-machine's own paths do.
    if (const auto down = maintenance.load();
        kind != Kind::Internal && !down->empty() && !target.starts_with("/.slot-machine/")) {
      if (const auto it = down->find(by_host ? decision.app : std::string()); it != down->end()) {
        counted.release();
        const std::shared_ptr<const Maintenance> m = it->second;  // named: kept across the co_await
        co_await answer_maintenance(client, head, *m);
        co_return;
      }
    }
    if (!backend) {
      // Named, not a temporary of a conditional inside co_await (GCC frees that twice).
      const std::string why = by_host ? fmt::format("app {} has no live version yet", decision.app) : "no app is live";
      co_await write_error(client, http::status::service_unavailable, why);
      co_return;
    }
    // max_request_body (contract §15): refused before the app sees a byte when the length
    // says so; a chunked body is cut where it passes (upstream.cpp).
    if (body_limit) {
      if (const auto length = req.content_length(); length && *length > body_limit) {
        counted.release();
        const std::string why = fmt::format("the request body ({} bytes) is over this app's max_request_body ({} bytes)",
                                            *length, body_limit);
        co_await write_error(client, http::status::payload_too_large, why);
        co_return;
      }
      req.body_limit(body_limit);
    }
    if (canary) {
      const bool to_new = backend == canary->backend;
      (to_new ? canary->tally->to_new : canary->tally->to_old).fetch_add(1, std::memory_order_relaxed);  // any loop
      static const std::string kNew = fmt::format("{}=new; Path=/; HttpOnly; SameSite=Lax", kCanaryCookie);
      static const std::string kOld = fmt::format("{}=old; Path=/; HttpOnly; SameSite=Lax", kCanaryCookie);
      if (drawn) rules.set_cookie = to_new ? kNew : kOld;
    }
    add_forwarded(head, peer, client.is_tls());
    if (beast::websocket::is_upgrade(req.get())) {
      counted.release();  // a tunnel is counted in Backend::tunnels instead
      co_await tunnel(client, cbuf, req, backend, *watched);
      co_return;
    }
    // Handing over to a newer daemon: this response is the connection's last.
    const bool keep_alive = req.get().keep_alive() && !draining;
    const bool again = co_await forward(client, cbuf, req, *backend, keep_alive, *watched, rules);
    counted.release();
    if (!again) co_return;
  }
}

awaitable<std::optional<Refusal>> Proxy::Impl::read_request_header(Stream& client, beast::flat_buffer& cbuf,
                                                                   http::request_parser<http::buffer_body>& req,
                                                                   Watched& watched) {
  error_code ec;
  HeaderScan scan;
  size_t scanned = 0;
  bool started = cbuf.size() > 0;
  if (started) client.expires_after(opts.header_timeout);
  for (;;) {
    const auto* data = static_cast<const char*>(cbuf.data().data());
    scan = scan_header(std::string_view(data, cbuf.size()), scanned);
    scanned = cbuf.size();
    if (scan.obs_fold) co_return Refusal{400, "obs-fold (a header line continued) is not accepted"};
    if (scan.end) {
      watched.served = true;
      break;
    }
    if (cbuf.size() >= kHeaderLimit) co_return Refusal{431, "request header too large"};
    if (!started) client.expires_after(kClientIdle);
    watched.awaiting_request = !started;
    const size_t n = co_await client.async_read_some(cbuf.prepare(kHeaderLimit - cbuf.size()),
                                                     redirect(ec));
    watched.awaiting_request = false;
    ec = client.why(ec);
    if (ec == beast::error::timeout && started)
      co_return Refusal{408, "the request header took too long"};
    if (ec) co_return Refusal{0, ""};
    cbuf.commit(n);
    if (!started) {
      started = true;
      client.expires_after(opts.header_timeout);
    }
  }
  cbuf.consume(scan.skip);
  // The whole header is buffered: parse it in place (the parser stops after the header).
  cbuf.consume(req.put(asio::buffer(cbuf.data().data(), scan.end - scan.skip), ec));
  if (!ec && !req.is_header_done()) ec = http::error::partial_message;
  if (ec == http::error::header_limit) co_return Refusal{431, "request header too large"};
  if (ec) co_return Refusal{400, "malformed request"};
  co_return check_request(req.get().base(), req.is_done());
}

awaitable<void> Proxy::Impl::watchdog(std::shared_ptr<Watched> w) {
  const auto shortest = std::min<std::chrono::steady_clock::duration>(opts.backend_timeout,
                                                                      opts.header_timeout);
  const auto tick = std::clamp<std::chrono::steady_clock::duration>(shortest / 4,
                                                                    std::chrono::milliseconds(10),
                                                                    std::chrono::seconds(1));
  for (;;) {
    error_code ec;
    w->timer.expires_after(tick);
    co_await w->timer.async_wait(redirect(ec));
    if (w->done) co_return;
    const auto now = Clock::now();
    // Handing over: a connection idle between requests gets a second for its next one
    // (its client retries on a fresh connection). One that has not sent its first request
    // yet cannot be retried by its client: it keeps the header timeout and the drain
    // deadline, however slow its first bytes (a loaded client seen at over a second).
    if (draining && w->awaiting_request && w->served && w->client && now - drain_began.load() >= kDrainIdleGrace)
      w->client->time_out_now();
    if (w->client) w->client->check(now);
    if (w->backend) w->backend->check(now);
  }
}

void Proxy::Impl::add_forwarded(http::request<http::buffer_body>& m, const std::string& peer,
                                bool tls) {
  auto xff = m["X-Forwarded-For"];
  m.set("X-Forwarded-For",
        xff.empty() ? peer : std::string(xff) + ", " + peer);
  if (tls)
    m.set("X-Forwarded-Proto", "https");
  else if (m["X-Forwarded-Proto"].empty())
    m.set("X-Forwarded-Proto", "http");
  if (m["X-Forwarded-Host"].empty() && !m[http::field::host].empty())
    m.set("X-Forwarded-Host", m[http::field::host]);
  m.erase(http::field::proxy_connection);
}


Proxy::Proxy(Options opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
Proxy::~Proxy() = default;

}  // namespace sm::proxy
