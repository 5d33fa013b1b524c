#include "cli/traffic.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "app/app.h"
#include "cli/client_http.h"
#include "log/json_text.h"

namespace sm::cli {
using nlohmann::json;

bool valid_utf8(const std::string& text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

int maintenance_command(const ClientOptions& o, bool on, const std::string& page_file,
                        std::optional<int> retry_after_s, std::ostream& out, std::ostream& err) {
  json body{{"enabled", on}};
  if (on && !page_file.empty()) {
    std::ifstream in(page_file, std::ios::binary);
    if (!in) {
      err << fmt::format("slot-machine maintenance: cannot read --page {}: no such file, or not readable\n", page_file);
      return 2;
    }
    std::ostringstream text;
    text << in.rdbuf();
    const std::string page = text.str();
    if (page.size() > app::kMaxMaintenancePage) {
      err << fmt::format("slot-machine maintenance: --page {} is {} bytes; a page is at most 1 MiB ({} bytes)\n",
                         page_file, page.size(), app::kMaxMaintenancePage);
      return 2;
    }
    if (!valid_utf8(page)) {
      err << fmt::format("slot-machine maintenance: --page {} is not UTF-8 text; save it as UTF-8\n", page_file);
      return 2;
    }
    body["page"] = page;
  }
  if (on && retry_after_s) body["retry_after_s"] = *retry_after_s;
  const Reply r = call(o, "POST", app_path(o, "/maintenance"), log::json_text(body), 30);
  if (!answered_ok(o, r, "maintenance", err)) return 1;
  if (o.json) {
    out << log::json_text(r.body, 2) << "\n";
    return 0;
  }
  const json m = r.body.value("maintenance", json());
  if (m.is_object())
    out << fmt::format("maintenance on since {}: every request gets 503 with Retry-After: {} and {} page\n",
                       m.value("since", ""), m.value("retry_after_s", 0), page_file.empty() ? "the built-in" : "your");
  else
    out << "maintenance off: the app answers again\n";
  return 0;
}

int pause_command(const ClientOptions& o, std::optional<int> timeout_s, std::ostream& out, std::ostream& err) {
  const json body = timeout_s ? json{{"timeout_s", *timeout_s}} : json::object();
  const Reply r = call(o, "POST", app_path(o, "/pause"), log::json_text(body), 30);
  if (!answered_ok(o, r, "pause", err)) return 1;
  if (o.json)
    out << log::json_text(r.body, 2) << "\n";
  else
    out << fmt::format("paused: new requests wait (for {} s at most, then 503); `slot-machine resume` lets them on\n",
                       r.body.value("timeout_s", 30));
  return 0;
}

int resume_command(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  const Reply r = call(o, "POST", app_path(o, "/resume"), "", 30);
  if (!answered_ok(o, r, "resume", err)) return 1;
  if (o.json)
    out << log::json_text(r.body, 2) << "\n";
  else
    out << fmt::format("resumed: {} held request(s) go on to the live app\n", r.body.value("released", 0));
  return 0;
}

}  // namespace sm::cli
