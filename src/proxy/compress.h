#pragma once
// Compressing answers on their way to the client (contract §15, "compress"): which
// coding a response gets, decided from the app's list, the request's Accept-Encoding
// and the response's own header; and the streaming encoders (zlib's gzip, libbrotli's
// br) the relay feeds as the body arrives.

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sm::proxy {

enum class Coding : uint8_t { None, Br, Gzip };

/// Every value of a header field, joined with ", " (as one value would list them).
std::string all_values(const boost::beast::http::fields& fields, boost::beast::http::field name);

/// "br", "gzip" (the Content-Encoding token).
std::string_view coding_name(Coding c);

/// The codings an app allows, best first (config "compress"; none: compression off).
struct Codings {
  std::array<Coding, 2> order{};
  uint8_t size = 0;
  /// From the config's names ("br", "gzip"), already validated; others are left out.
  static Codings from_names(const std::vector<std::string>& names);
  bool operator==(const Codings&) const = default;
};

/// The coding for a client whose Accept-Encoding is `accept` (every value of the field,
/// joined with commas): of the app's codings, the one with the highest q the client
/// gives (by name, or by `*`), the app's order breaking ties; None when the client
/// accepts none of them (no header, q=0, only identity).
Coding pick_coding(const Codings& app, std::string_view accept);

/// text/*, JSON, JavaScript, XML, SVG and wasm (parameters and case ignored).
bool compressible_type(std::string_view content_type);

/// Whether this answer may be compressed at all, whatever the client accepts: a
/// compressible type, not known to be under 1 KiB, no Content-Encoding of its own, not
/// `Cache-Control: no-transform`, a body of its own (not HEAD, 1xx, 204, 206, 304, no
/// Content-Range), no transfer coding but chunked. `length`: its Content-Length, if any.
bool may_compress(const boost::beast::http::response_header<>& res, bool head, std::optional<uint64_t> length);

/// Adds Accept-Encoding to the answer's Vary (unless there, or `*`): said of every answer
/// that may be compressed, so a cache keeps the two forms apart.
void add_vary(boost::beast::http::response_header<>& res);

/// Makes the header describe the body coded with `c`: Content-Encoding, chunked with no
/// Content-Length, a strong ETag made weak, no Accept-Ranges (a range of the coded bytes
/// is not what the app would serve).
void mark_coded(boost::beast::http::response_header<>& res, Coding c);

/// One response body's encoder. Every put() flushes: what came in so far can be decoded
/// from what came out (an event stream's event reaches the browser when it is sent).
class Encoder {
 public:
  /// Throws std::runtime_error when the library cannot start one (out of memory).
  static std::unique_ptr<Encoder> make(Coding c);
  virtual ~Encoder() = default;
  /// Codes `in` and appends the result to `out`; `last`: the body ends here.
  virtual void put(std::string_view in, bool last, std::string& out) = 0;
};

}  // namespace sm::proxy
