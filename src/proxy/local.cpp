// Requests the proxy answers itself (webhooks): read whole, handed to Options::local.
#include <boost/algorithm/string/case_conv.hpp>

#include "proxy/impl.h"

// GCC 12 warns that Asio's coroutine frame is freed by a mismatched operator delete in
// this file (only): a false positive about the sized
// operator new/delete pair that awaitable_frame_base declares together.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace sm::proxy {

namespace {

/// `local`'s answer to `r`; 500 should it throw (it says what went wrong itself).
LocalAnswer ask(const std::function<LocalAnswer(const LocalRequest&)>& local, const LocalRequest& r) {
  try {
    return local(r);
  } catch (...) {
    return {500, "{\"error\":\"the request could not be handled\"}\n", 0};
  }
}

/// After an early answer to a client still sending its body: reads and drops what it
/// sends (up to 4 MiB, for up to 2 s) so that closing does not reset the connection
/// before the client has read the answer.
awaitable<void> drain_input(Stream& client) {
  char buf[16 * 1024];
  size_t dropped = 0;
  client.expires_after(std::chrono::seconds(2));
  while (dropped < (4u << 20)) {
    error_code ec;
    const size_t n = co_await client.async_read_some(asio::buffer(buf), redirect(ec));
    if (client.why(ec)) break;
    dropped += n;
  }
  client.expires_never();
}

}  // namespace

bool Proxy::Impl::is_local(const http::request<http::buffer_body>& req) const {
  if (!opts.local || opts.local_path.empty()) return false;
  const auto t = req.target();
  const std::string_view target(t.data(), t.size());
  if (!target.starts_with(opts.local_path)) return false;
  const std::string_view rest = target.substr(opts.local_path.size());
  return rest.empty() || rest[0] == '/' || rest[0] == '?';
}

awaitable<void> Proxy::Impl::answer_locally(Stream& client, beast::flat_buffer& cbuf,
                                            http::request_parser<http::buffer_body>& req,
                                            const std::string& peer) {
  if (req.get().method() != http::verb::post) {
    co_await write_error(client, http::status::method_not_allowed, "webhooks take POST only", "POST");
    co_return;
  }
  if (req.content_length().value_or(0) > kLocalBodyLimit) {
    co_await write_error(client, http::status::payload_too_large, "the body is over 1 MiB");
    co_await drain_input(client);
    co_return;
  }
  error_code ec;
  if (beast::iequals(req.get()[http::field::expect], "100-continue")) {
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    client.expires_after(opts.header_timeout);
    co_await asio::async_write(client, asio::buffer(kContinue), redirect(ec));
    if (client.why(ec)) co_return;
  }
  http::request_parser<http::string_body> whole{std::move(req)};
  whole.body_limit(kLocalBodyLimit);  // a chunked body is counted as it comes
  client.expires_after(opts.header_timeout);
  co_await http::async_read(client, cbuf, whole, redirect(ec));
  ec = client.why(ec);
  if (ec == http::error::body_limit) {
    co_await write_error(client, http::status::payload_too_large, "the body is over 1 MiB");
    co_await drain_input(client);
    co_return;
  }
  if (ec == beast::error::timeout) {
    co_await write_error(client, http::status::request_timeout, "the request body took too long");
    co_return;
  }
  if (is_malformed(ec)) co_await write_error(client, http::status::bad_request, "malformed request body");
  if (ec) co_return;

  LocalRequest r;
  const auto& m = whole.get();
  r.target = std::string(m.target());
  for (const auto& f : m) r.headers[boost::algorithm::to_lower_copy(std::string(f.name_string()))] = std::string(f.value());
  r.body = std::move(whole.get().body());
  r.peer = peer;
  LocalAnswer a = ask(opts.local, r);
  http::response<http::string_body> res{static_cast<http::status>(a.status), m.version()};
  res.set(http::field::content_type, "application/json");
  if (a.retry_after_s > 0) res.set(http::field::retry_after, std::to_string(a.retry_after_s));
  res.body() = std::move(a.body);
  res.prepare_payload();
  co_await write_last(client, res);
}

}  // namespace sm::proxy
