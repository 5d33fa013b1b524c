#pragma once
// Server-Sent Events framing (text/event-stream), for the dashboard's live streams.

#include <string>
#include <string_view>

namespace sm::ui {

/// One event: "event: <name>" (when `name` is not empty), one "data: " line per line of
/// `data` (CR dropped: it would end a line too), then the blank line that ends it.
std::string sse_event(std::string_view name, std::string_view data);

/// Turns a byte stream (a log being followed) into one "line" event per complete line;
/// a last line without its newline waits for the next feed().
class SseLines {
 public:
  std::string feed(std::string_view bytes);

 private:
  std::string carry_;
};

}  // namespace sm::ui
