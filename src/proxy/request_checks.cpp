#include "proxy/request_checks.h"

#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <vector>

namespace sm::proxy {

namespace http = boost::beast::http;
using View = boost::beast::string_view;  // Boost 1.74's, not std::string_view

HeaderScan scan_header(std::string_view bytes, size_t resume) {
  HeaderScan out;
  // Blank lines before the request line are allowed (RFC 9112 §2.2); they end nothing.
  size_t i = 0;
  while (i + 1 < bytes.size() && bytes[i] == '\r' && bytes[i + 1] == '\n') i += 2;
  out.skip = i;
  // Where the last call stopped, less the one byte it may have left undecided (a CR).
  if (resume > i + 1) i = std::min(resume - 1, bytes.size());
  bool line_start = i > out.skip && bytes[i - 1] == '\n';  // just after a LF ending a line
  for (; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (line_start) {
      if (c == ' ' || c == '\t') {
        out.obs_fold = true;
        return out;
      }
      if (c == '\n' || (c == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n')) {
        out.end = i + (c == '\r' ? 2 : 1);
        return out;
      }
      if (c == '\r' && i + 1 == bytes.size()) return out;  // the LF is still to come
    }
    line_start = c == '\n';
  }
  return out;
}

namespace {

View trim(View s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// The codings of every Transfer-Encoding field, in order, empty list elements skipped.
std::vector<View> codings(const http::request_header<>& h) {
  std::vector<View> out;
  for (auto it = h.find(http::field::transfer_encoding);
       it != h.end() && it->name() == http::field::transfer_encoding; ++it) {
    View v = it->value();
    for (;;) {
      const auto comma = v.find(',');
      if (auto c = trim(v.substr(0, comma)); !c.empty()) out.push_back(c);
      if (comma == View::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return out;
}

bool has_ctl(View v) {
  for (unsigned char c : v)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return true;
  return false;
}

}  // namespace

std::optional<Refusal> check_request(const http::request_header<>& h, bool body_known_empty) {
  const auto method = h.method();
  if (method == http::verb::connect)
    return Refusal{501, "CONNECT is not supported: this is a reverse proxy"};
  if (method == http::verb::trace) return Refusal{405, "TRACE is not allowed"};

  size_t hosts = h.count(http::field::host);
  if (hosts > 1) return Refusal{400, "more than one Host header"};
  if (hosts == 0 && h.version() >= 11) return Refusal{400, "an HTTP/1.1 request needs a Host header"};

  for (const auto& f : h)
    if (has_ctl(f.value()))
      return Refusal{400, "a header value holds a control character"};

  const size_t lengths = h.count(http::field::content_length);
  if (lengths > 1 ||
      (lengths == 1 && h[http::field::content_length].find(',') != View::npos))
    return Refusal{400, "more than one Content-Length"};

  if (h.count(http::field::transfer_encoding)) {
    if (h.version() < 11) return Refusal{400, "Transfer-Encoding in an HTTP/1.0 request"};
    if (lengths) return Refusal{400, "both Content-Length and Transfer-Encoding"};
    const auto list = codings(h);
    if (list.empty() || !boost::beast::iequals(list.back(), "chunked"))
      return Refusal{400, "the last Transfer-Encoding must be chunked"};
    for (size_t i = 0; i + 1 < list.size(); ++i) {
      if (boost::beast::iequals(list[i], "chunked"))
        return Refusal{400, "chunked given more than once"};
      return Refusal{501, "only the chunked Transfer-Encoding is supported"};
    }
  }

  if ((method == http::verb::get || method == http::verb::head) && !body_known_empty)
    return Refusal{400, "a GET or HEAD request must not have a body"};
  return std::nullopt;
}

}  // namespace sm::proxy
