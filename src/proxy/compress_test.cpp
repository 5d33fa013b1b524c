#include "proxy/compress.h"

#include <brotli/decode.h>
#include <doctest/doctest.h>
#include <zlib.h>

#include <random>

namespace http = boost::beast::http;
using namespace sm::proxy;

namespace {
const Codings kDefault = Codings::from_names({"br", "gzip"});

/// Decodes what an encoder wrote so far, the stream left open (a gzip or br decoder
/// kept between calls: what each put() flushed must decode on its own).
class Decoder {
 public:
  explicit Decoder(Coding c) : c_(c) {
    if (c == Coding::Gzip) {
      REQUIRE(inflateInit2(&z_, 15 + 16) == Z_OK);
    } else {
      br_ = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
      REQUIRE(br_);
    }
  }
  ~Decoder() {
    if (c_ == Coding::Gzip)
      inflateEnd(&z_);
    else
      BrotliDecoderDestroyInstance(br_);
  }
  /// Returns what `in` decodes to; `ended` says whether the coded stream ended there.
  std::string feed(std::string_view in, bool& ended) {
    std::string out;
    char buf[4096];
    ended = false;
    if (c_ == Coding::Gzip) {
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      z_.avail_in = static_cast<uInt>(in.size());
      for (;;) {
        z_.next_out = reinterpret_cast<Bytef*>(buf);
        z_.avail_out = sizeof buf;
        const int rc = inflate(&z_, Z_NO_FLUSH);
        out.append(buf, sizeof buf - z_.avail_out);
        if (rc == Z_STREAM_END) {
          ended = true;
          break;
        }
        REQUIRE((rc == Z_OK || rc == Z_BUF_ERROR));
        if (z_.avail_in == 0 && z_.avail_out != 0) break;
      }
      return out;
    }
    const auto* next = reinterpret_cast<const uint8_t*>(in.data());
    size_t avail = in.size();
    for (;;) {
      auto* o = reinterpret_cast<uint8_t*>(buf);
      size_t room = sizeof buf;
      const auto rc = BrotliDecoderDecompressStream(br_, &avail, &next, &room, &o, nullptr);
      out.append(buf, sizeof buf - room);
      if (rc == BROTLI_DECODER_RESULT_SUCCESS) {
        ended = true;
        break;
      }
      REQUIRE(rc != BROTLI_DECODER_RESULT_ERROR);
      if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT && !BrotliDecoderHasMoreOutput(br_)) break;
    }
    return out;
  }

 private:
  Coding c_;
  z_stream z_{};
  BrotliDecoderState* br_ = nullptr;
};

http::response_header<> answer(unsigned code, std::initializer_list<std::pair<http::field, const char*>> fields) {
  http::response_header<> h;
  h.result(code);
  for (const auto& [f, v] : fields) h.insert(f, v);
  return h;
}
}  // namespace

TEST_CASE("compress: the coding is the app's first the client gives the highest q") {
  struct Row {
    const char* accept;
    Coding want;
  };
  const Row rows[] = {
      {"", Coding::None},
      {"gzip, deflate, br", Coding::Br},  // a browser: the app's order wins a tie
      {"gzip", Coding::Gzip},
      {"GZIP", Coding::Gzip},
      {"x-gzip", Coding::Gzip},
      {"br;q=0.5, gzip", Coding::Gzip},
      {"br;q=1.0, gzip;q=0.9", Coding::Br},
      {"br;q=0, gzip;q=0", Coding::None},
      {"identity", Coding::None},
      {"deflate", Coding::None},
      {"*", Coding::Br},
      {"*;q=0", Coding::None},
      {"br;q=0, *", Coding::Gzip},
      {"gzip;q=0.001", Coding::Gzip},
      {"gzip;q=2", Coding::None},     // not a q: the item is ignored
      {"gzip;q=abc", Coding::None},
      {"gzip ; q=0.5 , br ; q=0.4", Coding::Gzip},
      {" , ,gzip,, ", Coding::Gzip},
      {"gzip;level=9", Coding::Gzip},  // other parameters ignored
  };
  for (const auto& r : rows) {
    CAPTURE(r.accept);
    CHECK(pick_coding(kDefault, r.accept) == r.want);
  }
  CHECK(pick_coding(Codings::from_names({"gzip", "br"}), "gzip, br") == Coding::Gzip);
  CHECK(pick_coding(Codings::from_names({"gzip"}), "br") == Coding::None);
  CHECK(pick_coding(Codings::from_names({}), "gzip, br") == Coding::None);
  CHECK(Codings::from_names({"br", "br", "gzip"}).size == 2);
}

TEST_CASE("compress: compressible types") {
  for (const char* t : {"text/html", "text/html; charset=utf-8", "TEXT/PLAIN", "text/css", "text/event-stream",
                        "application/json", "application/problem+json", "application/javascript",
                        "application/x-javascript", "application/xml", "application/atom+xml", "image/svg+xml",
                        "application/wasm"}) {
    CAPTURE(t);
    CHECK(compressible_type(t));
  }
  for (const char* t : {"", "image/png", "application/octet-stream", "application/zip", "video/mp4", "text/",
                        "application/jsonx", "font/woff2", "image/svg"}) {
    CAPTURE(t);
    CHECK_FALSE(compressible_type(t));
  }
}

TEST_CASE("compress: which answers may be compressed") {
  const auto html = [](unsigned code) { return answer(code, {{http::field::content_type, "text/html"}}); };
  CHECK(may_compress(html(200), false, std::nullopt));
  CHECK(may_compress(html(404), false, 5000));
  CHECK(may_compress(html(200), false, 1024));
  CHECK_FALSE(may_compress(html(200), false, 1023));  // too small to gain
  CHECK_FALSE(may_compress(html(200), true, 5000));   // HEAD
  for (unsigned code : {101u, 204u, 206u, 304u}) {
    CAPTURE(code);
    CHECK_FALSE(may_compress(html(code), false, std::nullopt));
  }
  CHECK_FALSE(may_compress(answer(200, {{http::field::content_type, "image/png"}}), false, 5000));
  CHECK_FALSE(may_compress(answer(200, {}), false, 5000));  // no type: unknown bytes
  CHECK_FALSE(may_compress(
      answer(200, {{http::field::content_type, "text/html"}, {http::field::content_encoding, "gzip"}}), false, 5000));
  CHECK_FALSE(may_compress(
      answer(200, {{http::field::content_type, "text/html"}, {http::field::cache_control, "public, No-Transform"}}),
      false, 5000));
  CHECK(may_compress(
      answer(200, {{http::field::content_type, "text/html"}, {http::field::cache_control, "no-cache"}}), false, 5000));
  CHECK_FALSE(may_compress(
      answer(200, {{http::field::content_type, "text/html"}, {http::field::content_range, "bytes 0-9/100"}}), false,
      std::nullopt));
  CHECK_FALSE(may_compress(
      answer(200, {{http::field::content_type, "text/html"}, {http::field::transfer_encoding, "gzip, chunked"}}),
      false, std::nullopt));
  CHECK(may_compress(
      answer(200, {{http::field::content_type, "text/html"}, {http::field::transfer_encoding, "chunked"}}), false,
      std::nullopt));
}

TEST_CASE("compress: Vary and the coded answer's header") {
  auto a = answer(200, {{http::field::content_type, "text/html"}});
  add_vary(a);
  CHECK(a[http::field::vary] == "Accept-Encoding");
  add_vary(a);
  CHECK(a[http::field::vary] == "Accept-Encoding");
  auto b = answer(200, {{http::field::vary, "Origin"}});
  add_vary(b);
  CHECK(b[http::field::vary] == "Origin, Accept-Encoding");
  auto c = answer(200, {{http::field::vary, "*"}});
  add_vary(c);
  CHECK(c[http::field::vary] == "*");
  auto d = answer(200, {{http::field::vary, "origin, accept-encoding"}});
  add_vary(d);
  CHECK(d[http::field::vary] == "origin, accept-encoding");

  auto e = answer(200, {{http::field::content_length, "5000"},
                        {http::field::accept_ranges, "bytes"},
                        {http::field::etag, "\"abc\""}});
  mark_coded(e, Coding::Br);
  CHECK(e[http::field::content_encoding] == "br");
  CHECK(e.count(http::field::content_length) == 0);
  CHECK(e[http::field::transfer_encoding] == "chunked");
  CHECK(e.count(http::field::accept_ranges) == 0);
  CHECK(e[http::field::etag] == "W/\"abc\"");
  auto f = answer(200, {{http::field::etag, "W/\"abc\""}});
  mark_coded(f, Coding::Gzip);
  CHECK(f[http::field::etag] == "W/\"abc\"");
  CHECK(f[http::field::content_encoding] == "gzip");
}

TEST_CASE("compress: each put is decodable as it comes, and the whole round-trips") {
  std::mt19937 rng(7);
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "event: tick\ndata: " + std::to_string(rng() % 1000) + "\n\n";
  std::string noise(100000, '\0');
  for (auto& ch : noise) ch = static_cast<char>(rng());
  for (Coding c : {Coding::Gzip, Coding::Br}) {
    for (const std::string* body : {&text, &noise}) {
      CAPTURE(coding_name(c));
      auto enc = Encoder::make(c);
      Decoder dec(c);
      std::string decoded;
      size_t coded = 0;
      bool ended = false;
      for (size_t at = 0; at < body->size();) {
        const size_t n = std::min<size_t>(1 + rng() % 40000, body->size() - at);
        std::string out;
        enc->put(std::string_view(*body).substr(at, n), false, out);
        coded += out.size();
        at += n;
        decoded += dec.feed(out, ended);
        REQUIRE(decoded.size() == at);  // flushed: all of it readable now
        CHECK_FALSE(ended);
      }
      std::string out;
      enc->put({}, true, out);
      decoded += dec.feed(out, ended);
      CHECK(ended);
      CHECK(decoded == *body);
      if (body == &text) CHECK(coded + out.size() < body->size() / 4);
    }
    auto empty = Encoder::make(c);  // a body that ends at once still ends properly
    std::string out;
    empty->put({}, true, out);
    Decoder dec(c);
    bool ended = false;
    CHECK(dec.feed(out, ended).empty());
    CHECK(ended);
  }
}
