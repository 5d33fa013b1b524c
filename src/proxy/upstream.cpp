#include <future>

#include "proxy/impl.h"

namespace sm::proxy {
namespace {

/// Compression (contract §15): an answer that may be compressed says Vary; when the
/// client also accepts one of the app's codings, its header is made to say that coding
/// and the encoder for its body is returned.
std::unique_ptr<Encoder> compressor_for(const Codings& app, const http::request<http::buffer_body>& req,
                                        http::response_parser<http::buffer_body>& res) {
  auto& head = res.get().base();
  std::optional<uint64_t> length;
  if (const auto l = res.content_length()) length = *l;
  if (!may_compress(head, req.method() == http::verb::head, length)) return nullptr;
  add_vary(head);
  const Coding c = pick_coding(app, all_values(req, http::field::accept_encoding));
  if (c == Coding::None) return nullptr;
  std::unique_ptr<Encoder> coder;
  try {
    coder = Encoder::make(c);
  } catch (const std::exception&) {
    return nullptr;  // no memory for it: the answer goes as it is
  }
  mark_coded(head, c);
  return coder;
}

}  // namespace

awaitable<std::unique_ptr<BackendConn>> Proxy::Impl::connect(int port, Watched& w) {
  auto c = std::make_unique<BackendConn>(current->io.get_executor());
  error_code ec;
  WatchBackend watching(w, c->stream);
  c->stream.expires_after(kConnectTimeout);
  co_await c->stream.socket().async_connect(tcp::endpoint(asio::ip::address_v4::loopback(),
                                                          static_cast<unsigned short>(port)),
                                            redirect(ec));
  c->stream.expires_never();
  if (c->stream.why(ec)) co_return nullptr;
  c->stream.socket().set_option(tcp::no_delay(true), ec);
  co_return c;
}

awaitable<bool> Proxy::Impl::forward(Stream& client, beast::flat_buffer& cbuf,
                                     http::request_parser<http::buffer_body>& req, Backend& backend,
                                     bool client_keep_alive, Watched& watched, const AnswerRules& rules) {
  auto& msg = req.get();
  const bool no_body = req.is_done();
  const bool head = msg.method() == http::verb::head;
  msg.keep_alive(true);  // to the backend: reuse the connection
  error_code ec;
  if (beast::iequals(msg[http::field::expect], "100-continue")) {
    // Answer it here: the body then streams straight through, and the app sends no
    // interim response that could be mistaken for the final one.
    msg.erase(http::field::expect);
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    client.expires_after(kClientIdle);
    co_await asio::async_write(client, asio::buffer(kContinue), redirect(ec));
    if (client.why(ec)) co_return false;
  }
  auto& pool = backend.idle[current->index];  // this loop's connections to the app
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<BackendConn> conn;
    bool reused = false;
    if (!pool.empty()) {
      conn = std::move(pool.back());
      pool.pop_back();
      reused = true;
    } else {
      conn = co_await connect(backend.port, watched);
    }
    if (!conn) {
      co_await write_error(client, http::status::bad_gateway, "the app is not reachable");
      co_return false;
    }
    WatchBackend watching(watched, conn->stream);
    const Relayed sent = co_await relay<true>(
        conn->stream, client, cbuf, req,
        std::chrono::duration_cast<std::chrono::milliseconds>(kClientIdle));
    if (sent.ec && sent.reading) {  // the client's side: the app's connection is spoilt
      if (sent.ec == http::error::body_limit)
        co_await write_error(client, http::status::payload_too_large,
                             "the request body is over this app's max_request_body; the rest was not sent");
      else if (is_malformed(sent.ec))
        co_await write_error(client, http::status::bad_request, "malformed request body");
      co_return false;  // a client that left or stalled gets no answer
    }
    // An idle connection the app closed: retry on a fresh one while nothing was consumed.
    if (sent.ec && reused && no_body && attempt == 0) continue;
    if (sent.ec) {
      co_await write_error(client, http::status::bad_gateway, "sending the request to the app failed");
      co_return false;
    }
    std::optional<http::response_parser<http::buffer_body>> parsed;
    for (;;) {  // skip interim 1xx responses (but not 101, which is the answer)
      parsed.emplace();
      parsed->body_limit(kNoBodyLimit);
      parsed->header_limit(64 * 1024);
      if (head) parsed->skip(true);
      conn->stream.expires_after(opts.backend_timeout);
      co_await http::async_read_header(conn->stream, conn->buffer, *parsed, redirect(ec));
      ec = conn->stream.why(ec);
      conn->stream.expires_never();
      const unsigned code = ec ? 0 : parsed->get().result_int();
      if (code < 100 || code >= 200 || code == 101) break;
    }
    auto& res = *parsed;
    if (ec && reused && no_body && attempt == 0 &&
        (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::eof))
      continue;
    if (ec == beast::error::timeout) {
      co_await write_error(client, http::status::gateway_timeout, "the app did not answer in time");
      co_return false;
    }
    if (ec) {
      co_await write_error(client, http::status::bad_gateway, "the app closed the connection");
      co_return false;
    }
    const bool backend_keep_alive = res.get().keep_alive();
    bool keep = client_keep_alive;
    if (!res.is_done() && !res.get().has_content_length() && !res.get().chunked()) {
      // The body ends when the app closes: re-frame it for an HTTP/1.1 client, else close.
      if (msg.version() >= 11)
        res.get().chunked(true);
      else
        keep = false;
    }
    res.get().keep_alive(keep);
    if (!rules.set_cookie.empty())
      res.get().insert(http::field::set_cookie, beast::string_view(rules.set_cookie.data(), rules.set_cookie.size()));
    std::unique_ptr<Encoder> coder;
    if (rules.compress.size && msg.version() >= 11) coder = compressor_for(rules.compress, msg, res);
    client.answered = res.get().result_int();
    if ((co_await relay<false>(client, conn->stream, conn->buffer, res, std::nullopt, coder.get())).ec)
      co_return false;  // header already sent: all we can do is close
    // Bytes past the response (a body sent for HEAD, say) would be read as the next
    // response on this connection: such a connection is not reused.
    const bool clean = conn->buffer.size() == 0 &&
                       !(head && (res.get().has_content_length() || res.get().chunked()) &&
                         res.content_length().value_or(1) != 0);
    if (backend_keep_alive && clean && pool.size() < kPoolLimit) {
      conn->stream.expires_never();
      pool.push_back(std::move(conn));
    }
    co_return keep;
  }
}

awaitable<void> Proxy::Impl::tunnel(Stream& client, beast::flat_buffer& cbuf,
                                    http::request_parser<http::buffer_body>& req,
                                    std::shared_ptr<Backend> backend, Watched& watched) {
  auto conn = co_await connect(backend->port, watched);
  if (!conn) {
    co_await write_error(client, http::status::bad_gateway, "the app is not reachable");
    co_return;
  }
  error_code ec;
  req.get().body().data = nullptr;
  req.get().body().size = 0;
  req.get().body().more = false;
  http::serializer<true, http::buffer_body> sr{req.get()};
  co_await http::async_write(conn->stream, sr, redirect(ec));
  if (ec == http::error::need_buffer) ec = {};
  if (!ec && cbuf.size())  // bytes the client sent after the header
    co_await asio::async_write(conn->stream.socket(), cbuf.data(), redirect(ec));
  if (!ec && conn->buffer.size())
    co_await asio::async_write(client, conn->buffer.data(), redirect(ec));
  if (ec) co_return;
  watched.client = nullptr;  // a tunnel has no deadlines
  client.expires_never();
  conn->stream.expires_never();
  auto a = std::make_shared<Stream>(std::move(client));
  auto b = std::make_shared<Stream>(std::move(conn->stream));
  ++backend->tunnels;
  Loop& loop = *current;
  stats::bump(loop.counters.upgrades);
  struct Open {
    Backend& b;
    ~Open() { --b.tunnels; }
  } open{*backend};
  auto& open_here = backend->tunnel_sockets[loop.index];
  std::erase_if(open_here, [](const auto& w) { return w.expired(); });
  open_here.push_back(a);
  asio::co_spawn(loop.io, pipe(b, a), asio::detached);
  co_await pipe(a, b);
}

void Proxy::Impl::close_tunnels(std::optional<int> port) {
  std::vector<std::shared_ptr<Backend>> backends;
  {
    std::lock_guard lock(known_mu);
    for (const auto& w : known)
      if (auto b = w.lock(); b && (!port || b->port == *port)) backends.push_back(std::move(b));
  }
  std::vector<std::future<void>> done;
  for (auto& l : loops) {  // each loop closes its own, on its thread
    auto closed = std::make_shared<std::promise<void>>();
    done.push_back(closed->get_future());
    asio::post(l->io, [backends, closed, i = l->index] {
      for (auto& b : backends)
        for (auto& w : b->tunnel_sockets[i])
          if (auto s = w.lock()) {
            error_code ignore;
            s->socket().shutdown(Socket::shutdown_both, ignore);
            s->socket().close(ignore);
          }
      closed->set_value();
    });
  }
  for (auto& d : done) d.wait();
}

}  // namespace sm::proxy
