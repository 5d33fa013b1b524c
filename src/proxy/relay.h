#pragma once
// Moving bytes between a client and an app: one HTTP message streamed (relay), an error
// answer written by the proxy itself, and a raw byte pipe for Upgrade tunnels.

#include <boost/beast/http.hpp>

#include <memory>
#include <optional>
#include <string>

#include "proxy/compress.h"
#include "proxy/stream.h"

namespace sm::proxy {

namespace http = beast::http;

/// How a relay ended: `ec` is the first error, `reading` whether it came from the side
/// the message was read from (the sender: a malformed body, a timeout, a close) rather
/// than the side it was written to.
struct Relayed {
  error_code ec;
  bool reading = false;
};

/// Streams one message (header, then body as it arrives) from `in` to `out`.
/// The parser has already read the header.
/// `read_timeout` bounds each read from `in` (none: wait as long as the sender likes, as
/// Server-Sent Events need); each write to `out` is bounded by kClientIdle.
/// With `coder` the body is sent coded by it (the header already says so), each piece
/// flushed as it arrived.
template <bool isRequest>
awaitable<Relayed> relay(Stream& out, Stream& in, beast::flat_buffer& in_buf,
                            http::parser<isRequest, http::buffer_body>& p,
                            std::optional<std::chrono::milliseconds> read_timeout, Encoder* coder = nullptr) {
  error_code ec;
  http::serializer<isRequest, http::buffer_body> sr{p.get()};
  // The header goes out with the first piece of body when that has already arrived (one
  // write, not two); on its own when the body is still to come, so the peer sees it now.
  if (!p.is_done() && in_buf.size() == 0) {
    out.expires_after(kClientIdle);
    co_await http::async_write_header(out, sr, redirect(ec));
    ec = out.why(ec);
    if (ec) co_return Relayed{ec, false};
  }
  // Beast reads only as much as the buffer's free capacity (512 bytes for a fresh
  // buffer), so give it room while a body streams and take it back afterwards.
  // The body buffer is allocated only when there is a body (not in the coroutine frame,
  // which every request pays for).
  // A small body that has fully arrived with the header (the common case) needs neither.
  size_t chunk = kBodyChunk;
  bool grown = false;
  if (const auto left = p.content_length_remaining(); left && *left < chunk)
    chunk = static_cast<size_t>(*left);
  if (!p.is_done() && chunk > in_buf.size()) {
    in_buf.reserve(kBodyChunk);
    grown = true;
  }
  struct Shrink {
    beast::flat_buffer& b;
    bool grown;
    ~Shrink() {
      if (grown) b.shrink_to_fit();
    }
  } shrink{in_buf, grown};
  std::unique_ptr<char[]> body_buf(p.is_done() ? nullptr : new char[chunk]);
  char* const buf = body_buf.get();
  std::string coded;
  // Codes what was read (nothing, at the end) into `coded` and points the body there;
  // false when there is nothing to write yet.
  auto code = [&](size_t got) {
    coded.clear();
    coder->put(std::string_view(buf ? buf : "", got), p.is_done(), coded);
    p.get().body().data = coded.empty() ? nullptr : coded.data();
    p.get().body().size = coded.size();
    p.get().body().more = !p.is_done();
    return !coded.empty() || p.is_done();
  };
  do {
    if (!p.is_done()) {
      p.get().body().data = buf;
      p.get().body().size = chunk;
      if (read_timeout)
        in.expires_after(*read_timeout);
      else
        in.expires_never();
      co_await http::async_read_some(in, in_buf, p, redirect(ec));
      ec = in.why(ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return Relayed{ec, true};
      const size_t got = chunk - p.get().body().size;
      if (got == 0 && !p.is_done()) continue;  // only framing was parsed
      p.get().body().size = got;
      // Nothing but the last chunk's framing: no data. A zero-size buffer would be
      // written as a chunk of its own, "0\r\n\r\n", ending the body before its real end
      // (the peer then read the true last chunk as the start of a next message).
      p.get().body().data = got ? buf : nullptr;
      p.get().body().more = !p.is_done();
      if (coder && !code(got)) continue;  // all taken in, nothing out yet
    } else {
      p.get().body().data = nullptr;
      p.get().body().size = 0;
      p.get().body().more = false;
      if (coder) code(0);  // the coding's own ending
    }
    out.expires_after(kClientIdle);
    co_await http::async_write(out, sr, redirect(ec));
    ec = out.why(ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return Relayed{ec, false};
  } while (!p.is_done() && !sr.is_done());
  co_return Relayed{};
}

/// Writes one of the proxy's own answers, `res` (with Connection: close), then ends the
/// sending side (TLS: close_notify); each step bounded.
template <class Body>
awaitable<void> write_last(Stream& s, http::response<Body>& res) {
  res.set(http::field::connection, "close");
  s.answered = res.result_int();
  error_code ec;
  s.expires_after(std::chrono::seconds(5));
  co_await http::async_write(s, res, redirect(ec));
  s.expires_after(std::chrono::seconds(1));
  co_await s.shutdown_send();
  s.expires_never();
}

/// Answers `status` with `{"error": why}` and half-closes: the proxy's own answers.
awaitable<void> write_error(Stream& s, http::status status, const std::string& why,
                            const char* allow = nullptr);

/// Copies bytes from `from` to `to` until either side closes; then closes both.
awaitable<void> pipe(std::shared_ptr<Stream> from, std::shared_ptr<Stream> to);

}  // namespace sm::proxy
