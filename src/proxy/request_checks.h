#pragma once
// What the proxy refuses to forward (contract §4.1): requests whose framing an app could
// read differently from us (RFC 9112 §6–7, the request-smuggling cases), and methods a
// reverse proxy answers itself. Pure functions, so unit tests and fuzzers reach them.

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sm::proxy {

/// Where the raw bytes of a request header stand, before Beast parses them. Beast
/// unfolds obs-fold into spaces, which would hand the app a header the client never
/// sent, so the raw bytes are looked at first.
struct HeaderScan {
  size_t skip = 0;         // blank lines before the request line (ignored, RFC 9112 §2.2)
  size_t end = 0;          // bytes up to and including the blank line; 0 while incomplete
  bool obs_fold = false;   // a header line continued on the next line (LF then SP/HT)
};

/// Scans `bytes` (the start of a request) for the end of its header. Stops at the first
/// obs-fold; a header that is malformed in other ways is left to the parser. `resume`:
/// how many bytes an earlier call saw, so that a header trickling in byte by byte is
/// scanned once, not once per byte.
HeaderScan scan_header(std::string_view bytes, size_t resume = 0);

/// Why a request is not forwarded: the status the proxy answers, and a reason for the
/// client (one line, no quotes).
struct Refusal {
  unsigned status;
  std::string reason;
};

/// Checks a parsed request header. `body_known_empty` is the parser's view after the
/// header (no Content-Length body and not chunked). nullopt: forward it.
std::optional<Refusal> check_request(const boost::beast::http::request_header<>& h,
                                     bool body_known_empty);

}  // namespace sm::proxy
