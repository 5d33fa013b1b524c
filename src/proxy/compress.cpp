#include "proxy/compress.h"

#include <brotli/encode.h>
#include <zlib.h>

#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace sm::proxy {
namespace http = boost::beast::http;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return boost::beast::iequals(boost::beast::string_view(a.data(), a.size()),
                               boost::beast::string_view(b.data(), b.size()));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

/// Calls f(item) for each comma-separated item of a header value, trimmed, empty ones left out.
template <class F>
void each_item(std::string_view list, F f) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const auto item = trim(list.substr(0, comma));
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

/// A q-value ("1", "0.5", "0.001") in thousandths; -1 when it is not one.
int parse_q(std::string_view q) {
  q = trim(q);
  if (q.empty() || q.size() > 5) return -1;
  if (q[0] != '0' && q[0] != '1') return -1;
  int whole = q[0] - '0';
  if (q.size() == 1) return whole * 1000;
  if (q[1] != '.') return -1;
  int frac = 0, digits = 0;
  for (char c : q.substr(2)) {
    if (c < '0' || c > '9') return -1;
    frac = frac * 10 + (c - '0');
    ++digits;
  }
  while (digits++ < 3) frac *= 10;
  const int v = whole * 1000 + frac;
  return v > 1000 ? -1 : v;
}

class Gzip final : public Encoder {
 public:
  Gzip() {
    // Level 5, as Caddy's encode; 15 bits of window plus 16: a gzip wrapper.
    if (deflateInit2(&z_, 5, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      throw std::runtime_error("zlib could not start a gzip stream");
  }
  ~Gzip() override { deflateEnd(&z_); }
  void put(std::string_view in, bool last, std::string& out) override {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    const int flush = last ? Z_FINISH : Z_SYNC_FLUSH;
    for (;;) {
      const size_t had = out.size();
      const size_t room = std::max<size_t>(in.size() / 2 + 64, 4096);
      out.resize(had + room);
      z_.next_out = reinterpret_cast<Bytef*>(out.data() + had);
      z_.avail_out = static_cast<uInt>(room);
      const int rc = deflate(&z_, flush);
      out.resize(had + room - z_.avail_out);
      if (rc == Z_STREAM_END) return;
      if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("zlib failed to compress");
      if (z_.avail_in == 0 && z_.avail_out != 0 && !last) return;  // flushed, all taken
    }
  }

 private:
  z_stream z_{};
};

class Brotli final : public Encoder {
 public:
  Brotli() : s_(BrotliEncoderCreateInstance(nullptr, nullptr, nullptr)) {
    if (!s_) throw std::runtime_error("libbrotli could not start a stream");
    // Quality 4 and a 256 KiB window: about gzip's CPU for a smaller result, and about a
    // megabyte per stream (the default, 11 and 4 MiB, is for precompressed files).
    BrotliEncoderSetParameter(s_, BROTLI_PARAM_QUALITY, 4);
    BrotliEncoderSetParameter(s_, BROTLI_PARAM_LGWIN, 18);
  }
  ~Brotli() override { BrotliEncoderDestroyInstance(s_); }
  void put(std::string_view in, bool last, std::string& out) override {
    const auto* next = reinterpret_cast<const uint8_t*>(in.data());
    size_t avail = in.size();
    const auto op = last ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH;
    for (;;) {
      size_t avail_out = 0;
      if (!BrotliEncoderCompressStream(s_, op, &avail, &next, &avail_out, nullptr, nullptr))
        throw std::runtime_error("libbrotli failed to compress");
      size_t n = 0;
      const uint8_t* o = BrotliEncoderTakeOutput(s_, &n);
      out.append(reinterpret_cast<const char*>(o), n);
      if (avail == 0 && !BrotliEncoderHasMoreOutput(s_) && (!last || BrotliEncoderIsFinished(s_))) return;
    }
  }

 private:
  BrotliEncoderState* s_;
};

}  // namespace

std::string all_values(const http::fields& fields, http::field name) {
  std::string out;
  for (auto [it, end] = fields.equal_range(name); it != end; ++it) {
    if (!out.empty()) out += ", ";
    out.append(it->value().data(), it->value().size());
  }
  return out;
}

std::string_view coding_name(Coding c) {
  switch (c) {
    case Coding::Br:
      return "br";
    case Coding::Gzip:
      return "gzip";
    case Coding::None:
      break;
  }
  return "identity";
}

Codings Codings::from_names(const std::vector<std::string>& names) {
  Codings out;
  for (const auto& n : names) {
    const Coding c = n == "br" ? Coding::Br : n == "gzip" ? Coding::Gzip : Coding::None;
    if (c == Coding::None || out.size == out.order.size()) continue;
    if (std::find(out.order.begin(), out.order.begin() + out.size, c) != out.order.begin() + out.size) continue;
    out.order[out.size++] = c;
  }
  return out;
}

Coding pick_coding(const Codings& app, std::string_view accept) {
  if (app.size == 0 || accept.empty()) return Coding::None;
  std::array<int, 3> q{-1, -1, -1};  // by Coding: the q the client named it with
  int star = -1;
  each_item(accept, [&](std::string_view item) {
    const size_t semi = item.find(';');
    const auto name = trim(item.substr(0, semi));
    int value = 1000;
    for (auto params = semi == std::string_view::npos ? std::string_view() : item.substr(semi + 1);
         !params.empty();) {  // ";q=0.5" (other parameters ignored)
      const size_t next = params.find(';');
      const auto p = trim(params.substr(0, next));
      if (p.size() > 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') value = parse_q(p.substr(2));
      if (next == std::string_view::npos) break;
      params.remove_prefix(next + 1);
    }
    if (value < 0) return;  // a q that is not one: the item is ignored
    if (iequals(name, "br"))
      q[static_cast<int>(Coding::Br)] = std::max(q[static_cast<int>(Coding::Br)], value);
    else if (iequals(name, "gzip") || iequals(name, "x-gzip"))
      q[static_cast<int>(Coding::Gzip)] = std::max(q[static_cast<int>(Coding::Gzip)], value);
    else if (name == "*")
      star = std::max(star, value);
  });
  Coding best = Coding::None;
  int best_q = 0;
  for (uint8_t i = 0; i < app.size; ++i) {
    const Coding c = app.order[i];
    const int v = q[static_cast<int>(c)] >= 0 ? q[static_cast<int>(c)] : star;
    if (v > best_q) {
      best = c;
      best_q = v;
    }
  }
  return best;
}

bool compressible_type(std::string_view type) {
  type = trim(type.substr(0, type.find(';')));
  auto starts = [&](std::string_view p) { return type.size() >= p.size() && iequals(type.substr(0, p.size()), p); };
  auto ends = [&](std::string_view s) {
    return type.size() >= s.size() && iequals(type.substr(type.size() - s.size()), s);
  };
  if (starts("text/")) return type.size() > 5;
  if (starts("application/"))
    return ends("/json") || ends("+json") || ends("/javascript") || ends("/x-javascript") || ends("/ecmascript") ||
           ends("/xml") || ends("+xml") || ends("/wasm");
  return iequals(type, "image/svg+xml");
}

bool may_compress(const http::response_header<>& res, bool head, std::optional<uint64_t> length) {
  if (head) return false;
  const unsigned code = res.result_int();
  if (code < 200 || code == 204 || code == 206 || code == 304) return false;
  if (length && *length < 1024) return false;
  if (!compressible_type(sv(res[http::field::content_type]))) return false;
  if (res.count(http::field::content_encoding) || res.count(http::field::content_range)) return false;
  bool other_coding = false;
  each_item(all_values(res, http::field::transfer_encoding),
            [&](std::string_view t) { other_coding |= !iequals(t, "chunked"); });
  if (other_coding) return false;
  bool no_transform = false;
  each_item(all_values(res, http::field::cache_control),
            [&](std::string_view d) { no_transform |= iequals(d, "no-transform"); });
  return !no_transform;
}

void add_vary(http::response_header<>& res) {
  const std::string vary = all_values(res, http::field::vary);
  bool there = false;
  each_item(vary, [&](std::string_view v) { there |= v == "*" || iequals(v, "accept-encoding"); });
  if (there) return;
  res.set(http::field::vary, vary.empty() ? "Accept-Encoding" : vary + ", Accept-Encoding");
}

void mark_coded(http::response_header<>& res, Coding c) {
  res.erase(http::field::content_length);
  const auto name = coding_name(c);
  res.set(http::field::content_encoding, boost::beast::string_view(name.data(), name.size()));
  res.set(http::field::transfer_encoding, "chunked");
  res.erase(http::field::accept_ranges);
  if (const auto etag = sv(res[http::field::etag]); !etag.empty() && etag.front() == '"')
    res.set(http::field::etag, "W/" + std::string(etag));
}

std::unique_ptr<Encoder> Encoder::make(Coding c) {
  if (c == Coding::Br) return std::make_unique<Brotli>();
  if (c == Coding::Gzip) return std::make_unique<Gzip>();
  return nullptr;
}

}  // namespace sm::proxy
