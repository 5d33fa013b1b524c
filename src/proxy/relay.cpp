#include "proxy/relay.h"

#include <fmt/format.h>

namespace sm::proxy {

awaitable<void> write_error(Stream& s, http::status status, const std::string& why,
                            const char* allow) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "application/json");
  if (allow) res.set(http::field::allow, allow);
  res.body() = fmt::format("{{\"error\":\"{}\"}}\n", why);
  res.prepare_payload();
  co_await write_last(s, res);
}

awaitable<void> pipe(std::shared_ptr<Stream> from, std::shared_ptr<Stream> to) {
  char buf[kBodyChunk];
  for (;;) {
    error_code ec;
    size_t n = co_await from->async_read_some(asio::buffer(buf), redirect(ec));
    if (ec) break;
    co_await asio::async_write(*to, asio::buffer(buf, n), redirect(ec));
    if (ec) break;
  }
  error_code ignore;
  from->socket().close(ignore);
  to->socket().close(ignore);
}

}  // namespace sm::proxy
