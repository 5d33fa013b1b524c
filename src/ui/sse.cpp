#include "ui/sse.h"

namespace sm::ui {

std::string sse_event(std::string_view name, std::string_view data) {
  std::string out;
  if (!name.empty()) (out += "event: ") += std::string(name) + "\n";
  size_t from = 0;
  for (;;) {
    const size_t nl = data.find('\n', from);
    std::string_view line = data.substr(from, nl == std::string_view::npos ? std::string_view::npos : nl - from);
    out += "data: ";
    for (char c : line)
      if (c != '\r') out += c;
    out += '\n';
    if (nl == std::string_view::npos) break;
    from = nl + 1;
  }
  return out + "\n";
}

std::string SseLines::feed(std::string_view bytes) {
  carry_ += bytes;
  std::string out;
  size_t from = 0;
  for (size_t nl; (nl = carry_.find('\n', from)) != std::string::npos; from = nl + 1)
    out += sse_event("line", std::string_view(carry_).substr(from, nl - from));
  carry_.erase(0, from);
  return out;
}

}  // namespace sm::ui
