#include "proxy/request_checks.h"

#include <boost/beast/http.hpp>
#include <doctest/doctest.h>

namespace http = boost::beast::http;
using sm::proxy::check_request;
using sm::proxy::scan_header;

namespace {

/// The status check_request gives `raw` (0: forwarded), after Beast parsed its header.
unsigned status_of(const std::string& raw) {
  http::request_parser<http::empty_body> p;
  boost::system::error_code ec;
  p.put(boost::asio::buffer(raw), ec);
  REQUIRE_MESSAGE(p.is_header_done(), raw, ": ", ec.message());
  auto r = check_request(p.get().base(), p.is_done());
  return r ? r->status : 0;
}

}  // namespace

TEST_CASE("scan_header: finds the blank line, refuses obs-fold") {
  CHECK(scan_header("GET / HTTP/1.1\r\nHost: a\r\n\r\nrest").end == 27);
  CHECK(scan_header("GET / HTTP/1.1\r\nHost: a\r\n").end == 0);
  CHECK(scan_header("GET / HTTP/1.1\r\nHost: a\r\n\r").end == 0);
  CHECK(scan_header("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").end == 31);
  CHECK(scan_header("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").skip == 4);
  CHECK(scan_header("GET / HTTP/1.1\nHost: a\n\n").end == 24);  // the parser rejects it
  CHECK(scan_header("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n").obs_fold);
  CHECK(scan_header("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n").obs_fold);
  CHECK(scan_header("GET / HTTP/1.1\r\n Host: a\r\n\r\n").obs_fold);
  CHECK_FALSE(scan_header("GET / HTTP/1.1\r\nX: a b\r\n\r\n").obs_fold);
  CHECK(scan_header("").end == 0);
  // Fed a byte at a time, resuming, it finds the same end and the same obs-fold.
  for (std::string_view whole : {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "\r\nGET / HTTP/1.1\r\nX: a\r\n\r\n",
                                 "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"}) {
    const auto all = scan_header(whole);
    sm::proxy::HeaderScan last;
    size_t seen = 0;
    for (size_t n = 1; n <= whole.size() && !last.end && !last.obs_fold; ++n) {
      last = scan_header(whole.substr(0, n), seen);
      seen = n;
    }
    CHECK(last.end == all.end);
    CHECK(last.obs_fold == all.obs_fold);
    CHECK(last.skip == all.skip);
  }
}

TEST_CASE("check_request: framing that an app could read differently is refused") {
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n") == 0);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") == 0);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n") == 0);
  CHECK(status_of("GET / HTTP/1.0\r\n\r\n") == 0);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n") == 0);

  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n") == 400);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, x\r\n\r\n") == 400);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501);
  CHECK(status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n") == 400);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400);
  http::request_header<> built;  // Beast's parser refuses these itself; the check does too
  built.method(http::verb::get);
  built.version(11);
  built.set(http::field::host, "a");
  built.set("X", "a\x7f");
  CHECK(check_request(built, true)->status == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n") == 400);
  CHECK(status_of("HEAD / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
  CHECK(status_of("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n") == 501);
  CHECK(status_of("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n") == 405);
}
